"""One way to reach Temporal, used by the worker, the starters and the gateway alike."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from journeys.codec import EncryptionCodec, PayloadKeyError, parse_keys
from journeys.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, encrypted with the settings' payload keys; in clear in dev only."""
    if settings.payload_keys is None:
        if settings.env != "dev":
            raise PayloadKeyError(
                "JOURNEYS_PAYLOAD_KEYS not set: contacts' data would reach Temporal in clear "
                "(or set JOURNEYS_ENV=dev on a machine of your own)"
            )
        return pydantic_data_converter
    codec = EncryptionCodec(parse_keys(settings.payload_keys.get_secret_value()))
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        # Error messages and stack traces too: a provider's refusal may quote an address.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client of the Temporal the settings name; on `runtime` (the worker's and the
    gateway's: `journeys.metrics.process_runtime`), else the SDK's default one."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=temporal_tls(settings),
        data_converter=data_converter(settings),
        runtime=runtime,
    )


def temporal_tls(settings: Settings) -> bool | TLSConfig:
    """TLS to Temporal as Temporal's own environment configuration gives it (client
    certificate and key for mTLS, a CA, a server name: TEMPORAL_TLS_CLIENT_CERT_PATH and the
    like, or a profile of TEMPORAL_CONFIG_FILE), else on with an API key or TEMPORAL_TLS."""
    configured = ClientConfig.load_client_connect_config().get("tls")
    if isinstance(configured, TLSConfig):
        return configured
    return settings.temporal_tls or settings.temporal_api_key is not None


# Temporal is down, overloaded or too slow: the same call later should go through.
_UNAVAILABLE = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)


def temporal_unavailable(err: BaseException) -> bool:
    """Whether a call failed because Temporal could not take it now, rather than refused it."""
    if isinstance(err, RPCError):
        return err.status in _UNAVAILABLE
    # A lazily connected client that never reached the server says so this way.
    return isinstance(err, RuntimeError) and str(err).startswith("Failed client connect")
