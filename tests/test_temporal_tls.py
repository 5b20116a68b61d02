"""TLS to a Temporal cluster from Temporal's own environment configuration: mTLS certificate
files as Temporal Cloud and self-hosted clusters hand them out, an API key, or plain."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from journeys.connection import temporal_tls
from journeys.settings import Settings

TEMPORAL_ENV = (
    "TEMPORAL_TLS",
    "TEMPORAL_API_KEY",
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_NAME",
)


@pytest.fixture(autouse=True)
def no_temporal_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in TEMPORAL_ENV:
        monkeypatch.delenv(name, raising=False)
    # Not this machine's own ~/.config/temporalio/temporal.toml.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)


def test_client_certificate_files_give_mutual_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key, ca = tmp_path / "client.pem", tmp_path / "client.key", tmp_path / "ca.pem"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nclient\n")
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nkey\n")
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nca\n")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(cert))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(key))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(ca))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "journeys.a1b2c.tmprl.cloud")

    tls = temporal_tls(Settings())

    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == cert.read_bytes()
    assert tls.client_private_key == key.read_bytes()
    assert tls.server_root_ca_cert == ca.read_bytes()
    assert tls.domain == "journeys.a1b2c.tmprl.cloud"


def test_a_profile_of_temporal_config_file_gives_its_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"cert")
    key.write_bytes(b"key")
    config = tmp_path / "temporal.toml"
    config.write_text(
        f'[profile.prod]\naddress = "prod:7233"\n'
        f'[profile.prod.tls]\nclient_cert_path = "{cert}"\nclient_key_path = "{key}"\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")

    tls = temporal_tls(Settings())

    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key) == (b"cert", b"key")


def test_an_api_key_or_temporal_tls_turns_tls_on_and_nothing_leaves_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert temporal_tls(Settings()) is False
    assert temporal_tls(Settings.model_validate({"TEMPORAL_API_KEY": "cloud-key"})) is True
    monkeypatch.setenv("TEMPORAL_TLS", "true")
    # On, with the system's CA and no client certificate.
    assert temporal_tls(Settings()) == TLSConfig()
