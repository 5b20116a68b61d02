"""Settings, read from the environment only (secrets never live in files or the spec)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from journeys.codec import parse_keys
from journeys.send_window import Policy, policies

LIBRARY_DIR = Path(__file__).parent / "library"

# Public defaults, good for a stack on one's own machine only: whoever knows them can sign links.
DEV_SECRET_KEY = "dev-only-secret-change-me"
DEV_TWILIO_AUTH_TOKEN = "dev-token"
# Samples for the footer and the calls to action of a stack on one's own machine (and the tests);
# a worker elsewhere refuses to start on them (`missing_sender_details`).
SAMPLE_POSTAL_ADDRESS = "1 Example Street, Springfield, EX 00000, USA"
SAMPLE_SITE_URL = "https://www.example.com"
# The dashboard's password outside dev: long enough that guessing it over HTTP is hopeless.
DASHBOARD_PASSWORD_MIN = 16


class Settings(BaseSettings):
    """Everything a worker, a starter or the dev stack needs to find its peers."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # "dev" lets the worker and the gateway run on the public dev secrets; `journeys dev` and the
    # tests say so explicitly, anything else must bring secrets of its own.
    env: Literal["dev", "production"] = Field("production", alias="JOURNEYS_ENV")

    temporal_address: str = Field("localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", alias="TEMPORAL_NAMESPACE")
    temporal_api_key: SecretStr | None = Field(None, alias="TEMPORAL_API_KEY")
    temporal_tls: bool = Field(False, alias="TEMPORAL_TLS")
    task_queue: str = Field("journeys", alias="JOURNEYS_TASK_QUEUE")
    # Keys encrypting every payload sent to Temporal (journeys.codec): "k2:<base64>,k1:<base64>",
    # the first encrypts, all decrypt. Without them payloads go in clear, allowed in dev only.
    payload_keys: SecretStr | None = Field(None, alias="JOURNEYS_PAYLOAD_KEYS")
    # The codec endpoint (/codec) decrypts payloads for the Temporal UI and CLI: for whoever
    # presents this bearer key; off without one (open in dev, whose UI sends no credentials).
    codec_key: SecretStr | None = Field(None, alias="JOURNEYS_CODEC_KEY")
    # The Temporal UI's origin, allowed to call the codec endpoint from the browser.
    temporal_ui_url: str | None = Field(None, alias="TEMPORAL_UI_URL")

    # Where a worker or a gateway process serves Prometheus metrics ("host:port", /metrics): the
    # Temporal SDK's and ours (journeys.metrics). Unset: no endpoint. Each process needs its own.
    metrics_address: str | None = Field(None, alias="JOURNEYS_METRICS_ADDRESS")

    # What one `journeys worker` takes on at once (the Temporal SDK's worker options; README,
    # Speed, says what a worker holds at these). A cached run replays nothing when its next task
    # comes, and costs memory while it waits; one past the cache is replayed from its history.
    worker_cached_runs: int = Field(1000, alias="JOURNEYS_WORKER_CACHED_RUNS", ge=0)
    worker_workflow_tasks: int = Field(100, alias="JOURNEYS_WORKER_WORKFLOW_TASKS", ge=1)
    worker_activities: int = Field(100, alias="JOURNEYS_WORKER_ACTIVITIES", ge=1)
    worker_local_activities: int = Field(100, alias="JOURNEYS_WORKER_LOCAL_ACTIVITIES", ge=1)
    # Sticky and other polls share them: the SDK needs at least two while it caches runs.
    worker_pollers: int = Field(5, alias="JOURNEYS_WORKER_POLLERS", ge=2)

    database_url: str = Field("sqlite:///.data/journeys.db", alias="JOURNEYS_DATABASE_URL")
    library_dir: Path = Field(LIBRARY_DIR, alias="JOURNEYS_LIBRARY")

    # Signs the tokens in open/click/unsubscribe links; set a long random value in production.
    secret_key: SecretStr = Field(SecretStr(DEV_SECRET_KEY), alias="JOURNEYS_SECRET_KEY")
    gateway_url: str = Field("http://localhost:8000", alias="JOURNEYS_GATEWAY_URL")
    # Bearer key backend services present to /v1; without one the API refuses every call.
    api_key: SecretStr | None = Field(None, alias="JOURNEYS_API_KEY")
    # The operators' password of the dashboard (/dashboard, HTTP Basic, any user name); without
    # one the dashboard is off. The dev stack makes one when it is not set.
    dashboard_password: SecretStr | None = Field(None, alias="JOURNEYS_DASHBOARD_PASSWORD")

    smtp_host: str = Field("localhost", alias="SMTP_HOST")
    smtp_port: int = Field(1025, alias="SMTP_PORT")
    smtp_username: str | None = Field(None, alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(False, alias="SMTP_STARTTLS")
    mail_from: str = Field("Journeys <journeys@localhost>", alias="MAIL_FROM")

    # The brand every email's layout shows (journeys.email_layout), and where calls to action lead
    # (`links.site` in templates). The postal address is in every email's footer: CAN-SPAM
    # requires the sender's in every commercial email.
    brand_name: str = Field("Journeys", alias="JOURNEYS_BRAND_NAME")
    brand_color: str = Field("#2f6fed", alias="JOURNEYS_BRAND_COLOR")
    brand_logo_url: str | None = Field(None, alias="JOURNEYS_BRAND_LOGO_URL")
    postal_address: str = Field(SAMPLE_POSTAL_ADDRESS, alias="JOURNEYS_POSTAL_ADDRESS")
    site_url: str = Field(SAMPLE_SITE_URL, alias="JOURNEYS_SITE_URL")

    twilio_account_sid: str = Field("ACdev", alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr = Field(
        SecretStr(DEV_TWILIO_AUTH_TOKEN), alias="TWILIO_AUTH_TOKEN"
    )
    twilio_from_number: str = Field("+15005550006", alias="TWILIO_FROM_NUMBER")
    # Empty means Twilio itself; the dev stack and tests point it at the local stand-in.
    twilio_base_url: str | None = Field(None, alias="TWILIO_BASE_URL")

    # What holds a message back at send time, per channel, over the defaults in
    # journeys.channels: "sms=22:00-07:00,email=none" (quiet hours on the contact's clock) and
    # "sms=2/1d,email=none" (at most COUNT messages in any DURATION); see journeys.send_window.
    quiet_hours: str = Field("", alias="JOURNEYS_QUIET_HOURS")
    frequency_caps: str = Field("", alias="JOURNEYS_FREQUENCY_CAPS")

    # Web push (VAPID): the application server's private key (base64url, raw or PEM) and contact.
    vapid_private_key: SecretStr | None = Field(None, alias="VAPID_PRIVATE_KEY")
    vapid_subject: str = Field("mailto:journeys@localhost", alias="VAPID_SUBJECT")

    # Mobile push through FCM's HTTP v1 API; the endpoint is configurable for a local stand-in.
    fcm_project_id: str = Field("journeys-dev", alias="FCM_PROJECT_ID")
    fcm_endpoint: str = Field("https://fcm.googleapis.com", alias="FCM_ENDPOINT")
    # A service-account JSON file (production) or a ready access token (stand-ins, tests).
    fcm_credentials_file: Path | None = Field(None, alias="FCM_CREDENTIALS_FILE")
    fcm_access_token: SecretStr | None = Field(None, alias="FCM_ACCESS_TOKEN")

    # Data hygiene (journeys.hygiene): the region a phone without a country code is read in
    # when the contact has no `country`, the days without engagement before a contact sunsets,
    # whether email domains' mail servers are looked up (MX, each within `dns_timeout` seconds,
    # at `dns_server` "host[:port]" when set, else the system's resolvers), and when the
    # `hygiene` Temporal Schedule runs (cron, in UTC).
    hygiene_region: str = Field("US", alias="JOURNEYS_HYGIENE_REGION", min_length=2, max_length=2)
    sunset_days: int = Field(180, alias="JOURNEYS_SUNSET_DAYS", ge=1)
    check_deliverability: bool = Field(False, alias="JOURNEYS_CHECK_DELIVERABILITY")
    dns_server: str | None = Field(None, alias="JOURNEYS_DNS_SERVER")
    dns_timeout: float = Field(2.0, alias="JOURNEYS_DNS_TIMEOUT", gt=0, le=30)
    hygiene_cron: str = Field("0 3 * * *", alias="JOURNEYS_HYGIENE_CRON")

    def missing_secrets(self) -> list[str]:
        """The variables a deployment must still set: those left at their public dev default,
        none in a dev environment."""
        if self.env == "dev":
            return []
        public = {
            "JOURNEYS_SECRET_KEY": (self.secret_key, DEV_SECRET_KEY),
            "TWILIO_AUTH_TOKEN": (self.twilio_auth_token, DEV_TWILIO_AUTH_TOKEN),
        }
        missing = [
            name
            for name, (value, default) in public.items()
            if value.get_secret_value() in ("", default)
        ]
        if self.payload_keys is None:
            missing.append("JOURNEYS_PAYLOAD_KEYS")
        return missing

    def missing_sender_details(self) -> list[str]:
        """What a worker, which sends the email, must still be told outside a dev environment:
        the sender's postal address and site, left at their samples."""
        if self.env == "dev":
            return []
        samples = {
            "JOURNEYS_POSTAL_ADDRESS": (self.postal_address, SAMPLE_POSTAL_ADDRESS),
            "JOURNEYS_SITE_URL": (self.site_url, SAMPLE_SITE_URL),
        }
        return [name for name, (value, sample) in samples.items() if value.strip() in ("", sample)]

    @field_validator("brand_color")
    @classmethod
    def _colour(cls, v: str) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", v):
            raise ValueError(f"JOURNEYS_BRAND_COLOR is a colour as #rrggbb, not {v!r}")
        return v

    @field_validator("brand_logo_url", "site_url")
    @classmethod
    def _web_address(cls, v: str | None, info: ValidationInfo) -> str | None:
        """Emails link to it: an http(s) address, or nothing would open."""
        if not v and info.field_name == "brand_logo_url":
            return None  # set empty: no logo, the brand name instead
        if v is not None and not re.fullmatch(r"https?://[^\s\"'<>]+", v):
            name = cls.model_fields[str(info.field_name)].alias
            raise ValueError(f"{name} is an http:// or https:// address, not {v!r}")
        return v

    @field_validator("dashboard_password")
    @classmethod
    def _long_password(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """Refused at start outside dev: the dashboard shows every contact's path."""
        if v is None or not v.get_secret_value():
            return None  # set empty: the dashboard is off
        if info.data.get("env") != "dev" and len(v.get_secret_value()) < DASHBOARD_PASSWORD_MIN:
            raise ValueError(
                f"JOURNEYS_DASHBOARD_PASSWORD is at least {DASHBOARD_PASSWORD_MIN} characters "
                'outside dev (a random one: python -c "import secrets; '
                'print(secrets.token_urlsafe(24))")'
            )
        return v

    @field_validator("payload_keys")
    @classmethod
    def _keys_parse(cls, keys: SecretStr | None) -> SecretStr | None:
        if keys is not None:
            parse_keys(keys.get_secret_value())
        return keys

    @field_validator("quiet_hours", "frequency_caps")
    @classmethod
    def _policy(cls, v: str, info: ValidationInfo) -> str:
        """Refused at start, not at the first send of a night."""
        if info.field_name == "quiet_hours":
            policies(quiet_hours=v)
        else:
            policies(frequency_caps=v)
        return v

    def send_policies(self) -> dict[str, Policy]:
        return policies(self.quiet_hours, self.frequency_caps)
