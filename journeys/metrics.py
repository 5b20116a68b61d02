"""What the worker and the gateway tell Prometheus, beside the Temporal SDK's own metrics.

Both come from the SDK's runtime: `process_runtime` serves Prometheus on a process's
`JOURNEYS_METRICS_ADDRESS`, and our instruments are made by that runtime's meter (in an activity,
`activity.metric_meter()`, which adds namespace, task queue and activity type), so one
`/metrics` holds both. Labels stay few-valued: channel, outcome, journey id, event kind; never a
contact, an address or a step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from journeys.models import SendRequest

SENDS = "journeys_sends"
EVENTS = "journeys_events"
OUTBOX_DEPTH = "journeys_outbox_depth"
OUTBOX_OLDEST_AGE = "journeys_outbox_oldest_age_seconds"
EVENT_TO_SEND = "journeys_event_to_send_seconds"
# From an open that ended a wait_for to the next message leaving: tens of milliseconds when all
# is well, seconds when Temporal or the worker lag, a minute when something is stuck.
EVENT_TO_SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Longer than this, the event was not what the send answered at once: a backdated API event.
EVENT_TO_SEND_LIMIT = timedelta(days=1)

# sent: the provider took it now (a resend of an unknown outcome too); reconciled: an earlier
# attempt's message was found at the provider, not sent again; duplicate: the ledger had the
# send's outcome already; failed: refused for good; capped: skipped over the frequency cap.
SendOutcome = Literal["sent", "reconciled", "duplicate", "failed", "capped"]
# An event kind no journey and nothing of ours names: API callers choose kinds, and a label per
# kind they invent would grow without bound.
OTHER_KIND = "other"


def process_runtime(metrics_address: str | None) -> Runtime:
    """The Temporal runtime of a worker or a gateway process: Core's own log lines forwarded to
    Python logging (so they are JSON and masked like ours), and with `metrics_address`
    ("host:port") Prometheus served there at /metrics, durations in seconds, counters with
    `_total`. Raises ValueError when the address cannot be bound."""
    metrics = None
    if metrics_address:
        metrics = PrometheusConfig(
            bind_address=metrics_address,
            counters_total_suffix=True,
            durations_as_seconds=True,
            histogram_bucket_overrides={EVENT_TO_SEND: EVENT_TO_SEND_BUCKETS},
        )
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=metrics,
        )
    )


def nth_address(address: str, n: int) -> str:
    """ "host:port" with the port `n` higher: where gateway process `n` of several serves."""
    host, _, port = address.rpartition(":")
    return f"{host}:{int(port) + n}"


def client_meter(client: Client) -> MetricMeter:
    """The meter of the runtime `client` runs on (a no-op one without metrics)."""
    return (client.service_client.config.runtime or Runtime.default()).metric_meter


def count_send(meter: MetricMeter, req: SendRequest, outcome: SendOutcome) -> None:
    meter.create_counter(SENDS, "Sends by channel, journey and outcome").add(
        1, {"channel": req.channel, "journey": req.journey_id, "outcome": outcome}
    )


def observe_event_to_send(meter: MetricMeter, req: SendRequest, now: datetime) -> None:
    """The time from the event the send answers to `now`, when it answers one; a negative
    time (clocks apart) or one over EVENT_TO_SEND_LIMIT is left out."""
    if req.after_event_at is None:
        return
    waited = now - req.after_event_at
    if timedelta(0) <= waited <= EVENT_TO_SEND_LIMIT:
        meter.create_histogram_float(
            EVENT_TO_SEND, "From an event that ended a wait_for to the next send", "s"
        ).record(waited.total_seconds(), {"channel": req.channel, "journey": req.journey_id})


class GatewayMetrics:
    """The gateway's instruments: events received by kind, and the outbox."""

    def __init__(self, meter: MetricMeter, known_kinds: Iterable[str]) -> None:
        self.known_kinds = frozenset(known_kinds)
        self._events = meter.create_counter(EVENTS, "Events received by the gateway, by kind")
        self._depth = meter.create_gauge(OUTBOX_DEPTH, "Events kept, not yet taken by Temporal")
        self._oldest = meter.create_gauge_float(
            OUTBOX_OLDEST_AGE, "Age of the oldest event kept for Temporal", "s"
        )

    def count_event(self, kind: str) -> None:
        self._events.add(1, {"kind": kind if kind in self.known_kinds else OTHER_KIND})

    def report_outbox(self, depth: int, oldest_at: datetime | None, now: datetime) -> None:
        self._depth.set(depth)
        self._oldest.set(max(0.0, (now - oldest_at).total_seconds()) if oldest_at else 0.0)
