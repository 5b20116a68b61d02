"""Settings, read from the environment only (secrets never live in files or the spec)."""

from __future__ import annotations

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

    database_url: str = Field("sqlite:///.data/journeys.db", alias="JOURNEYS_DATABASE_URL")
    library_dir: Path = Field(LIBRARY_DIR, alias="JOURNEYS_LIBRARY")

    # Signs the tokens in open/click/unsubscribe links; set a long random value in production.
    secret_key: SecretStr = Field(SecretStr(DEV_SECRET_KEY), alias="JOURNEYS_SECRET_KEY")
    gateway_url: str = Field("http://localhost:8000", alias="JOURNEYS_GATEWAY_URL")
    # Bearer key backend services present to /v1; without one the API refuses every call.
    api_key: SecretStr | None = Field(None, alias="JOURNEYS_API_KEY")

    smtp_host: str = Field("localhost", alias="SMTP_HOST")
    smtp_port: int = Field(1025, alias="SMTP_PORT")
    smtp_username: str | None = Field(None, alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(False, alias="SMTP_STARTTLS")
    mail_from: str = Field("Journeys <journeys@localhost>", alias="MAIL_FROM")

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
