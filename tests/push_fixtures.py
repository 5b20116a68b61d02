"""Fixtures for push: the web push service and FCM stand-ins, a fresh VAPID key, and settings
that send to them, with push templates added to the channel fixtures' template library."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devstack.sinks.push import FcmSink, WebPushSink, new_vapid_key, settings_for
from journeys.settings import Settings

FCM_PROJECT = "journeys-test"
FCM_TOKEN = "test-fcm-access-token"

PUSH_TEMPLATES = {
    "web_push/welcome.yaml": """\
title: "Welcome, {{ contact.attributes.first_name }}"
body: "Your journey {{ journey }} starts at {{ step }}."
""",
    "mobile_push/welcome.yaml": """\
title: "Hi {{ contact.attributes.first_name }}"
body: "Open the app to pick up where you left off."
""",
}


@pytest.fixture
async def web_push_sink(tmp_path: Path) -> AsyncIterator[WebPushSink]:
    sink = WebPushSink(jsonl=tmp_path / "web_push.jsonl")
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
async def fcm_sink(tmp_path: Path) -> AsyncIterator[FcmSink]:
    sink = FcmSink(FCM_PROJECT, FCM_TOKEN, jsonl=tmp_path / "fcm.jsonl")
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
def vapid_key() -> tuple[str, str]:
    """(private key for VAPID_PRIVATE_KEY, public key a browser subscribes with)."""
    return new_vapid_key()


@pytest.fixture
def push_settings(settings: Settings, fcm_sink: FcmSink, vapid_key: tuple[str, str]) -> Settings:
    for name, text in PUSH_TEMPLATES.items():
        path = settings.library_dir / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return settings.model_copy(update=settings_for(fcm_sink, vapid_key[0]))
