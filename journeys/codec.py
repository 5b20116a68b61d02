"""Payloads encrypted before they leave the process: Temporal keeps (and its UI shows) only
ciphertext of contact ids, events and facts.

AES-GCM with 256-bit keys from JOURNEYS_PAYLOAD_KEYS, `id:<base64 of 32 bytes>` separated by
commas. The first key encrypts; every key decrypts, found by the id each payload carries: a new
key goes first, the old ones stay until no history needs them. Payloads written before
encryption (unencrypted histories) pass through as they are.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE = 12


class PayloadKeyError(ValueError):
    pass


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """`k2:<base64>,k1:<base64>` as (id, key) pairs in order; PayloadKeyError says what is wrong."""
    keys: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, encoded = item.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            key = b""
        if not sep or not key_id or len(key) != 32:
            raise PayloadKeyError(
                f"JOURNEYS_PAYLOAD_KEYS: '{key_id}' is not id:<base64 of 32 random bytes>"
            )
        if key_id in dict(keys):
            raise PayloadKeyError(f"JOURNEYS_PAYLOAD_KEYS: key id '{key_id}' twice")
        keys.append((key_id, key))
    if not keys:
        raise PayloadKeyError("JOURNEYS_PAYLOAD_KEYS has no key")
    return keys


def new_key(key_id: str) -> str:
    """A fresh key in JOURNEYS_PAYLOAD_KEYS' format."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        self._current = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._current]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(_NONCE)
            # The key id as associated data: a payload moved under another id fails to decrypt.
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), self._current.encode())
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: self._current.encode()},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode(p) for p in payloads]

    def _decode(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(f"payload encrypted with key '{key_id}', not in the keys given")
        try:
            plain = cipher.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], key_id.encode())
        except InvalidTag:
            raise PayloadKeyError(f"payload under key '{key_id}' does not decrypt") from None
        return Payload.FromString(plain)
