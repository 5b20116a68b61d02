"""The journey's own sends for bare Temporal's workflows (`python -m bench.bare worker --sends`):
bench.throughput's third round, where bare Temporal does the same sending work as a journey run,
so that what differs between the two is the engine alone."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.email import EmailActivities
from activities.sms import SmsActivities
from bench.embedded import FOUR_STEPS
from journeys.library import load_library
from journeys.models import SendRequest, WindowCheck
from journeys.settings import Settings
from journeys.spec import SendStep
from journeys.store import ContactStore


class JourneySends:
    """`bare_send` doing what the four-step journey's send step of that id does: the project's
    send activity for the step's channel and template, its send window checked, to the bench's
    contact number `contact` (`{task queue}-{contact}`, stored by bench.throughput), with the
    same settings."""

    def __init__(self, store: ContactStore, settings: Settings) -> None:
        self.spec = load_library(settings.library_dir)[FOUR_STEPS]
        self.prefix = settings.task_queue
        self.email = EmailActivities(store, settings)
        self.sms = SmsActivities(store, settings)
        self.sends = {"email": self.email.send_email, "sms": self.sms.send_sms}

    async def close(self) -> None:
        await self.email.close()
        await self.sms.close()

    @activity.defn(name="bare_send")
    async def send(self, contact: int, step: str) -> str:
        send = self.spec.step(step)
        assert isinstance(send, SendStep)
        run = activity.info().workflow_id
        request = SendRequest(
            key=f"{run}/{step}",
            workflow_id=run,
            journey_id=self.spec.id,
            step_id=step,
            contact_id=f"{self.prefix}-{contact}",
            channel=send.channel,
            template=send.template,
            window=WindowCheck(now=datetime.now(UTC)),
        )
        result = await self.sends[send.channel](request)
        # A retry of an attempt that sent (timed out on a busy server) finds it a duplicate.
        if result.status not in ("sent", "duplicate"):
            raise RuntimeError(f"{step} to {request.contact_id}: {result}")
        return result.status
