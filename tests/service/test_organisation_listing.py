"""GET /organisations: pages by name with the total of all matches, each organisation with its identifiers, and
the filters (anchor, kind, name fragment) applied to the page and the total alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from tests.conftest import Database
from tests.support.api import make_org


async def test_pages_totals_identifiers_and_filters(db: Database, session: AsyncSession, app_client: Any) -> None:
    walsall = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK", is_anchor=True)
    await make_org(session, "Birmingham City Council", kind="local_authority", gss_code="E08000025", is_anchor=True)
    await make_org(session, "Aston Surgery 50%_Off")
    session.add_all(
        [
            m.OrganisationIdentifier(organisation_id=walsall.id, scheme="GB-NHS", value="RBK"),
            m.OrganisationIdentifier(organisation_id=walsall.id, scheme="GB-CFS", value="walsall-1"),
        ]
    )
    await session.commit()

    every = (await app_client.get("/organisations")).json()
    assert (every["total"], every["limit"], every["offset"]) == (3, 50, 0)
    names = [o["name"] for o in every["items"]]
    assert names == ["Aston Surgery 50%_Off", "Birmingham City Council", "Walsall Healthcare NHS Trust"]
    trust = every["items"][2]
    assert trust["identifiers"] == [{"scheme": "GB-NHS", "id": "RBK"}, {"scheme": "GB-CFS", "id": "walsall-1"}]
    assert (trust["ods_code"], trust["is_anchor"], trust["kind"]) == ("RBK", True, "nhs_trust")
    assert every["items"][0]["identifiers"] == []

    second = (await app_client.get("/organisations", params={"limit": 1, "offset": 1})).json()
    assert ([o["name"] for o in second["items"]], second["total"]) == (["Birmingham City Council"], 3)
    past = (await app_client.get("/organisations", params={"offset": 10})).json()
    assert (past["items"], past["total"]) == ([], 3)

    anchors = (await app_client.get("/organisations", params={"anchor": "true", "limit": 1})).json()
    assert ([o["name"] for o in anchors["items"]], anchors["total"]) == (["Birmingham City Council"], 2)
    others = (await app_client.get("/organisations", params={"anchor": "false"})).json()
    assert [o["name"] for o in others["items"]] == ["Aston Surgery 50%_Off"]
    councils = (await app_client.get("/organisations", params={"kind": "local_authority"})).json()
    assert [o["name"] for o in councils["items"]] == ["Birmingham City Council"]
    fragment = (await app_client.get("/organisations", params={"q": "%_o", "anchor": "false"})).json()
    assert ([o["name"] for o in fragment["items"]], fragment["total"]) == (["Aston Surgery 50%_Off"], 1)
    nothing = (await app_client.get("/organisations", params={"q": "zzz"})).json()
    assert (nothing["items"], nothing["total"]) == ([], 0)
