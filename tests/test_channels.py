"""The table of channels (journeys.channels) is the one list: the spec's type names exactly its
channels, and the worker runs the activity it names for each."""

from __future__ import annotations

from typing import get_args

from journeys.channels import CHANNELS, Channel
from journeys.models import JourneyInput
from journeys.spec import JourneySpec
from tests.temporal_fixtures import Stack
from workflows.journey import JourneyWorkflow


def test_the_channel_type_names_exactly_the_channels_of_the_table() -> None:
    assert get_args(Channel) == tuple(CHANNELS)
    assert all(name == info.name for name, info in CHANNELS.items())


async def test_the_worker_runs_every_channels_send_activity(stack: Stack) -> None:
    journey = JourneySpec.model_validate(
        {
            "id": "every_channel",
            "version": 1,
            "description": "one send on each channel",
            "trigger": "manual",
            "steps": [
                {"id": name, "kind": "send", "channel": name, "template": "any"}
                for name in CHANNELS
            ],
        }
    )
    # A contact the store does not know: each channel's activity refuses it, and records that in
    # the ledger. An activity the worker did not register would never answer.
    handle = await stack.env.client.start_workflow(
        JourneyWorkflow.run,
        JourneyInput(spec=journey, contact_id="c-nobody"),
        id="journey:every_channel:c-nobody",
        task_queue=stack.settings.task_queue,
    )

    result = await handle.result()

    assert [(v.step, v.outcome) for v in result.visits] == [
        (name, "failed: no such contact") for name in CHANNELS
    ]
    ledger = await stack.store.deliveries_of("c-nobody")
    assert [(row["channel"], row["status"]) for row in ledger] == [
        (name, "failed") for name in CHANNELS
    ]
