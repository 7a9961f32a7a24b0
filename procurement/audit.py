"""The append-only audit trail: every write records who, in which role, when, what changed and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.auth import Principal

SYSTEM_ACTOR = "system"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


async def record_audit(
    session: AsyncSession,
    *,
    actor: Principal | None,
    action: str,
    entity_type: str,
    entity_id: int | str,
    organisation_id: int | None = None,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
    actor_name: str | None = None,
) -> None:
    session.add(
        m.AuditEvent(
            at=clock.now(),
            actor_user_id=actor.user_id if actor else None,
            actor_name=actor.name if actor else (actor_name or SYSTEM_ACTOR),
            actor_role=actor.role.value if actor else None,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            organisation_id=organisation_id,
            changes={k: [_jsonable(a), _jsonable(b)] for k, (a, b) in (changes or {}).items()},
            reason=reason,
        )
    )


def _apply(obj: Any, fields: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set fields on an ORM object and return {field: (old, new)} for the ones that changed."""
    changed: dict[str, tuple[Any, Any]] = {}
    for key, new in fields.items():
        old = getattr(obj, key)
        if old != new:
            setattr(obj, key, new)
            changed[key] = (old, new)
    return changed


def _unset_dropped(struct: msgspec.Struct) -> dict[str, Any]:
    return {f: getattr(struct, f) for f in struct.__struct_fields__ if getattr(struct, f) is not msgspec.UNSET}
