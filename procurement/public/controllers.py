"""HTTP for the public pages: no sign-in, plain links, cacheable for a minute (a withdrawal shows soon).

The same page for everyone (no workspace menu even when signed in), so a shared cache may keep it.
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.datastructures import ResponseHeader
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.public.pages import anchor_context, home_context
from procurement.web.frame import PAGE_EXCEPTION_HANDLERS

_LISTING = [ResponseHeader(name="Cache-Control", value="public, max-age=60")]


class PublicPagesController(Controller):
    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    response_headers = _LISTING

    @get("/", name="public-home")
    async def home(self, db_session: AsyncSession) -> Template:
        return Template(template_name="pages/public_home.html", context=await home_context(db_session))

    @get("/anchors/{key:str}", name="public-anchor")
    async def anchor(self, db_session: AsyncSession, key: str) -> Template:
        return Template(
            template_name="pages/public_anchor.html",
            context=await anchor_context(db_session, key[:32]),
        )
