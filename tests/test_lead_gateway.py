"""Grades recomputed when an event arrives or a contact is stored: clicks posted to the /v1 API
raise a C lead's score over a threshold, the gateway regrades after each, and a journey that
starts on grade_changed starts and reads the new grade."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from devstack.sinks.mail import MailSink
from gateway.deps import Gateway
from gateway.outbox import hand_over
from gateway.serve import build_gateway
from journeys.contacts import Contact
from journeys.leads.library import grading_of
from journeys.library import load_library
from journeys.models import JourneyEvent
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from tests.api_fixtures import API_KEY, ServedGateway, new_contact_id, serving
from tests.gateway_fixtures import stored_events
from tests.temporal_fixtures import PAYLOAD_KEYS
from tests.test_gateway_api import eventually
from workers.worker import journey_worker

GRADING = """\
fit:
  - grade: C
    when: ["attribute:role == 'adviser'"]
weights: {clicked: 5}
half_life_days: 30
raise_at: [19]  # four clicks a moment apart: just under 20
"""
# Started by every grade change; says which grade it found.
ON_GRADE_CHANGED = """\
id: on_grade_changed
version: 1
description: tags a lead by the grade it was given
trigger: grade_changed
active: true
re_entry: after_exit
steps:
  - id: which
    kind: branch
    conditions:
      - when: grade:B
        next: b_lead
      - when: grade_in:[C,D]
        next: cd_lead
    otherwise: ungraded
  - id: b_lead
    kind: end
    tag: LEAD_B
  - id: cd_lead
    kind: end
    tag: LEAD_CD
  - id: ungraded
    kind: end
    tag: UNGRADED
"""


@pytest.fixture
async def graded(
    dev_temporal: WorkflowEnvironment,
    store: ContactStore,
    settings: Settings,
    mail_sink: MailSink,
    tmp_path: Path,
) -> AsyncIterator[ServedGateway]:
    library = tmp_path / "leads-library"
    library.mkdir()
    (library / "grading.yaml").write_text(GRADING)
    (library / "on_grade_changed.yaml").write_text(ON_GRADE_CHANGED)
    settings = settings.model_copy(
        update={
            "library_dir": library,
            "task_queue": f"leads-{uuid.uuid4().hex[:8]}",
            "api_key": SecretStr(API_KEY),
        }
    )
    gw = Gateway(
        settings, store, dev_temporal.client, load_library(library), {}, grading_of(library)
    )
    async with journey_worker(gw.client, store, settings), serving(gw) as http:
        http.headers["Authorization"] = f"Bearer {API_KEY}"
        yield ServedGateway(http, gw, mail_sink)


async def click(served: ServedGateway, contact_id: str) -> None:
    r = await served.http.post(
        f"/v1/contacts/{contact_id}/events",
        json={"event_id": uuid.uuid4().hex, "kind": "clicked"},
    )
    assert r.status_code == 200, r.text


async def test_clicks_that_raise_the_score_over_a_threshold_change_the_grade_and_start_a_journey(
    graded: ServedGateway,
) -> None:
    contact_id = new_contact_id()
    r = await graded.http.put(
        f"/v1/contacts/{contact_id}", json={"attributes": {"role": "adviser"}}
    )
    assert r.status_code == 201, r.text

    async def tags() -> list[str]:
        return await graded.store.tags_of(contact_id)

    # Graded as it is stored: a C (from none), and the journey reads it.
    assert await eventually(tags) == ["LEAD_CD"]
    for _ in range(4):
        await click(graded, contact_id)

    # The fourth click reaches 19: C raised to B, recorded, handed over, and the journey
    # started again reads B.
    async def b_lead() -> bool:
        return "LEAD_B" in await tags()

    await eventually(b_lead)
    assert await stored_events(graded.store, contact_id) == [
        "grade_changed",
        "clicked",
        "clicked",
        "clicked",
        "clicked",
        "grade_changed",
    ]
    kept = await graded.store.lead_grade(contact_id)
    assert kept is not None and (kept.grade, kept.fit) == ("B", "C") and kept.score >= 19
    # Handed over: nothing is left in the outbox.
    assert (await graded.store.held_summary())[0] == 0

    # Stored again as someone no fit rule describes: a D, raised to C by the same clicks.
    r = await graded.http.put(f"/v1/contacts/{contact_id}", json={"attributes": {}})
    assert r.status_code == 200, r.text

    async def regraded() -> bool:
        kept = await graded.store.lead_grade(contact_id)
        return kept is not None and (kept.grade, kept.fit) == ("C", "D")

    await eventually(regraded)
    assert (await stored_events(graded.store, contact_id))[-1] == "grade_changed"


async def test_an_event_the_gateway_keeps_and_hands_over_regrades_the_contact_too(
    graded: ServedGateway,
) -> None:
    """The path of opens, clicks and visits (tracking links, the site script): the outbox."""
    contact_id = new_contact_id()
    await graded.store.upsert_contacts([Contact(id=contact_id)])
    click = JourneyEvent(kind="clicked", occurred_at=datetime.now(UTC))
    assert await hand_over(graded.gw, contact_id, click)

    async def tags() -> list[str]:
        return await graded.store.tags_of(contact_id)

    assert await eventually(tags) == ["LEAD_CD"]  # a D: no fit rule describes them
    assert await stored_events(graded.store, contact_id) == ["clicked", "grade_changed"]
    kept = await graded.store.lead_grade(contact_id)
    assert kept is not None and kept.grade == "D"
    assert (await graded.store.held_summary())[0] == 0


async def test_the_gateway_loads_the_librarys_grading_at_start_up(
    dev_temporal: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    target = dev_temporal.client.service_client.config.target_host
    served = settings.model_copy(
        update={
            "temporal_address": target,
            "library_dir": LIBRARY_DIR,
            "payload_keys": SecretStr(PAYLOAD_KEYS),
        }
    )
    gw = await build_gateway(served)
    await gw.store.close()
    assert gw.grading == grading_of(LIBRARY_DIR) and gw.grading is not None
    # A library of its own without a grading file grades nobody.
    (tmp_path / "own-library").mkdir()
    gw = await build_gateway(served.model_copy(update={"library_dir": tmp_path / "own-library"}))
    await gw.store.close()
    assert gw.grading is None
