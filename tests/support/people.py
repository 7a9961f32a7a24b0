"""People who sign in, for tests: a user with a password set through the real invitation path, and a signed-in
in-process client (CSRF token read from the form, as a browser does)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from procurement.accounts.people import invite_user, set_password

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def make_person(
    session: AsyncSession, email: str, role: str, org: str | None = None, password: str = PASSWORD
) -> int:
    invitation = await invite_user(session, email=email, role=role, org=org)
    user = await set_password(session, invitation.token, password, password)
    assert not isinstance(user, dict), user
    await session.commit()
    return user.id


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def form_token(client: Any, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


async def sign_in(client: Any, email: str, password: str = PASSWORD, next_path: str = "/workspace") -> Any:
    token = await form_token(client, "/sign-in")
    return await client.post(
        "/sign-in", data={"_csrf_token": token, "email": email, "password": password, "next": next_path}
    )
