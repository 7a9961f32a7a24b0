"""Plain domain exceptions. Services raise them; they are mapped once to RFC 9457 problems for HTTP
(`procurement.problems`) and once to a one-line message for the command line (`procurement.commands`)."""

from __future__ import annotations


class DomainError(Exception):
    """A well-formed request that breaks a business rule (HTTP 422). ``detail`` is written for people."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    """A value that cannot be understood (HTTP 400); the message says what to send instead."""


class Forbidden(DomainError):
    """The caller may not do this for this organisation (HTTP 403)."""


class NotFound(DomainError):
    """No such record (HTTP 404)."""


class ConflictError(DomainError):
    """The change conflicts with the current state of the data (HTTP 409)."""
