"""A response sent the same way every time: for an answer held in memory, its ASGI form is made once.

Building a response per request (headers merged, encoded and sized) cost about as much as the rest of a cached
read beyond the framework. A ``ReusedResponse`` is made when its body is (once per data version) and keeps the
ASGI response its first use produced; Litestar's ASGI response keeps no state of a request, so it can be sent
again. The security headers (``procurement.headers``) are added to each sending, not to what is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from litestar import Response

if TYPE_CHECKING:
    from litestar import Litestar, Request
    from litestar.response.base import ASGIResponse

T = TypeVar("T")


class ReusedResponse(Response[T]):
    """Returned by one route handler only: the layered headers and cookies of its first use are the ones kept."""

    __slots__ = ("_asgi",)

    def __init__(self, content: T, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._asgi: ASGIResponse | None = None

    def to_asgi_response(self, app: Litestar | None, request: Request[Any, Any, Any], **kwargs: Any) -> ASGIResponse:
        if self._asgi is None:
            self._asgi = super().to_asgi_response(app, request, **kwargs)
        return self._asgi
