"""Stand-ins for the push providers, speaking their real protocols so the real clients are used.

`WebPushSink` is a push service (RFC 8030) for subscriptions it creates itself, as a browser's
PushManager would: it checks the VAPID authorization (RFC 8292) and decrypts the aes128gcm body
(RFC 8291) with the subscription's private key, so what it keeps is what a browser would show.

`FcmSink` answers FCM's HTTP v1 send call (`POST /v1/projects/{project}/messages:send`) with
FCM's JSON, errors included, and an OAuth token endpoint for service-account files it writes, so
google-auth's own token exchange is exercised too.

Both listen in the caller's event loop (port 0: any free port) like devstack.sinks.sms, and can
append every message to a JSON-lines file for the dev stack.
"""

from __future__ import annotations

import binascii
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.auth import exceptions as google_exceptions
from google.auth import jwt as google_jwt
from py_vapid import Vapid
from py_vapid.utils import b64urldecode, b64urlencode
from pydantic import SecretStr

from devstack.sinks.http import HttpSink

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# RFC 8292 section 2: a VAPID token may not claim to live longer than this.
VAPID_MAX_AGE = 24 * 3600
# RFC 8030 section 7.2: every push service takes at least this much; the sink takes no more.
MAX_PAYLOAD = 4096
URGENCIES = ("very-low", "low", "normal", "high")
# RFC 8030 section 5.4: a Topic is at most 32 characters of the URL-safe base64 alphabet.
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# What FCM registration tokens are made of; anything else is INVALID_ARGUMENT there too.
_FCM_TOKEN = re.compile(r"^[\w:.-]{1,4096}$")
ACCESS_TOKEN_SECONDS = 3600


def new_vapid_key() -> tuple[str, str]:
    """A fresh VAPID key pair as the settings and browsers take it: the raw private scalar and
    the uncompressed public point, both base64url (VAPID_PRIVATE_KEY, applicationServerKey)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = key.private_numbers().private_value.to_bytes(32, "big")
    return b64urlencode(private), b64urlencode(public)


def dev_vapid_key(path: Path) -> str:
    """The dev stack's VAPID private key, made on first use and kept in `path`, so the
    subscriptions made against its public key stay valid across restarts."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_vapid_key()[0] + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class _Subscription:
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    # The applicationServerKey it was made with; None accepts any VAPID key.
    server_key: str | None


class _Unauthorized(ValueError):
    pass


def _vapid_key_of(authorization: str, origin: str) -> str:
    """The public key `k` of a valid `vapid t=<JWT>, k=<key>` authorization for `origin`."""
    scheme, _, params = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise _Unauthorized("expected a 'vapid' authorization (RFC 8292)")
    fields = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
    token, key = fields.get("t", ""), fields.get("k", "")
    signing_input, _, signature = token.rpartition(".")
    try:
        header, claims = (json.loads(b64urldecode(s.encode())) for s in signing_input.split("."))
        valid = Vapid.from_raw_public(key.encode()).verify_token(signing_input.encode(), signature)
    except (ValueError, binascii.Error) as e:
        raise _Unauthorized(f"malformed VAPID token or key: {e}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _Unauthorized("VAPID token header and claims must be JSON objects")
    if not valid or header.get("alg") != "ES256":
        raise _Unauthorized("VAPID token signature does not verify with k (ES256)")
    if claims.get("aud") != origin:
        raise _Unauthorized(f"VAPID aud is {claims.get('aud')!r}, not this origin {origin!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or not time.time() < exp <= time.time() + VAPID_MAX_AGE:
        raise _Unauthorized("VAPID exp is missing, past, or more than 24 hours ahead")
    if not claims.get("sub"):
        raise _Unauthorized("VAPID sub (a mailto: or https: contact) is missing")
    return key


class WebPushSink(HttpSink):
    """A push service. `new_subscription()` (or `POST /subscriptions`) makes a subscription as
    a browser would; messages pushed to it are kept, decrypted, in `messages`: endpoint,
    payload (JSON decoded when it is JSON), ttl, urgency, topic, id, at."""

    def __init__(self, jsonl: Path | None = None) -> None:
        super().__init__(jsonl)
        self._subscriptions: dict[str, _Subscription] = {}
        self._gone: set[str] = set()

    def new_subscription(self, application_server_key: str | None = None) -> dict[str, Any]:
        """A fresh subscription ({endpoint, keys: {p256dh, auth}}, as PushSubscription.toJSON()
        gives it); the sink keeps its private key. Call after start()."""
        sid = secrets.token_urlsafe(16)
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        endpoint = f"{self.base_url}/push/{sid}"
        self._subscriptions[sid] = _Subscription(endpoint, key, auth, application_server_key)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys = {"p256dh": b64urlencode(public), "auth": b64urlencode(auth)}
        return {"endpoint": endpoint, "keys": keys}

    def gone(self, endpoint: str) -> None:
        """From now on, pushes to `endpoint` answer 410 Gone (the user unsubscribed)."""
        self._gone.add(endpoint)

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/subscriptions", self._subscribe)
        app.router.add_post("/push/{sid}", self._push)

    def _error(self, status: int, message: str) -> web.Response:
        # The shape Mozilla's autopush answers with.
        phrase = HTTPStatus(status).phrase
        return web.json_response(
            {"code": status, "errno": status, "error": phrase, "message": message}, status=status
        )

    async def _subscribe(self, request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return self._error(400, 'expected a JSON body, e.g. {"applicationServerKey": ...}')
        server_key = body.get("applicationServerKey") if isinstance(body, dict) else None
        return web.json_response(self.new_subscription(server_key), status=201)

    async def _push(self, request: web.Request) -> web.Response:
        subscription = self._subscriptions.get(request.match_info["sid"])
        if subscription is None:
            return self._error(404, "no such subscription")
        if subscription.endpoint in self._gone:
            return self._error(410, "subscription expired or unsubscribed")
        origin = f"{request.scheme}://{request.host}"
        try:
            key = _vapid_key_of(request.headers.get("Authorization", ""), origin)
        except _Unauthorized as e:
            return self._error(401, str(e))
        if subscription.server_key is not None and key != subscription.server_key:
            return self._error(403, "VAPID key is not the one the subscription was made with")
        try:
            ttl = int(request.headers["TTL"])
        except (KeyError, ValueError):
            return self._error(400, "a TTL header (seconds) is required")
        urgency = request.headers.get("Urgency", "normal")
        if ttl < 0 or urgency not in URGENCIES:
            return self._error(400, f"bad TTL {ttl} or Urgency {urgency!r}")
        topic = request.headers.get("Topic")
        if topic is not None and not _TOPIC.match(topic):
            return self._error(400, "a Topic is at most 32 base64url characters (RFC 8030)")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self._error(415, "the body must be encrypted with aes128gcm (RFC 8291)")
        body = await request.read()
        if len(body) > MAX_PAYLOAD:
            return self._error(413, f"payload of {len(body)} bytes exceeds {MAX_PAYLOAD}")
        try:
            plain = http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth_secret,
                version="aes128gcm",
            )
        except (http_ece.ECEException, InvalidTag, ValueError) as e:
            return self._error(400, f"cannot decrypt the body: {e!r}")
        text = plain.decode("utf-8", errors="replace")
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = text
        message_id = secrets.token_urlsafe(16)
        self._keep(
            {
                "id": message_id,
                "endpoint": subscription.endpoint,
                "payload": payload,
                "ttl": ttl,
                "urgency": urgency,
                "topic": topic,
                "at": datetime.now(UTC).isoformat(),
            }
        )
        location = f"{self.base_url}/message/{message_id}"
        return web.Response(status=201, headers={"Location": location, "TTL": str(ttl)})


_GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _fcm_error(
    status: int, message: str, code: str | None = None, field: str | None = None
) -> web.Response:
    details: list[dict[str, Any]] = []
    if code:
        details.append(
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
        )
    if field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _GRPC_STATUS.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


class FcmSink(HttpSink):
    """FCM's HTTP v1 send API for one project. Accepts `access_token` as a bearer token, and the
    tokens its `/token` endpoint issued for service-account files from
    `write_service_account()`. Keeps `messages`: token, notification, data, collapse (the
    message's collapse keys: android collapse_key and notification tag, apns-collapse-id,
    webpush Topic), name, at."""

    def __init__(
        self,
        project_id: str = "journeys-dev",
        access_token: str = "dev-fcm-token",
        jsonl: Path | None = None,
    ) -> None:
        super().__init__(jsonl)
        self.project_id = project_id
        self.access_token = access_token
        self._unregistered: set[str] = set()
        self._issued: dict[str, float] = {}
        # private_key_id -> public key PEM of the service accounts written.
        self._service_accounts: dict[str, bytes] = {}

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @staticmethod
    def new_token() -> str:
        """A device registration token shaped like FCM's."""
        return f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"

    def unregister(self, token: str) -> None:
        """From now on, sends to `token` answer 404 UNREGISTERED (the app was uninstalled)."""
        self._unregistered.add(token)

    def revoke_access_tokens(self) -> None:
        """Forget the tokens `/token` issued (as if the service-account key was deleted)."""
        self._issued.clear()

    def write_service_account(self, path: Path) -> Path:
        """Write a service-account JSON file whose token_uri is this sink; call after start()."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        self._service_accounts[key_id] = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        info = {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": key_id,
            "private_key": private_pem.decode(),
            "client_email": f"journeys@{self.project_id}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": self.token_uri,
        }
        path.write_text(json.dumps(info), encoding="utf-8")
        return path

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        app.router.add_post("/token", self._token)

    def _error(self, status: int, message: str) -> web.Response:
        return _fcm_error(status, message)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        if secrets.compare_digest(token, self.access_token):
            return True
        return self._issued.get(token, 0.0) > time.time()

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = google_jwt.decode(
                str(form.get("assertion", "")),
                certs=self._service_accounts,
                # google-auth signs for Google's own endpoint whatever the file's token_uri.
                audience=[GOOGLE_TOKEN_URI, self.token_uri],
            )
        except (ValueError, google_exceptions.GoogleAuthError) as e:
            return web.json_response(
                {"error": "invalid_grant", "error_description": str(e)}, status=400
            )
        if FCM_SCOPE not in str(claims.get("scope", "")).split():
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = f"ya29.dev-{secrets.token_urlsafe(32)}"
        self._issued[token] = time.time() + ACCESS_TOKEN_SECONDS
        return web.json_response(
            {"access_token": token, "expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer"}
        )

    async def _send(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _fcm_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        project = request.match_info["project"]
        if project != self.project_id:
            return _fcm_error(403, f"Permission denied on project {project}", "SENDER_ID_MISMATCH")
        try:
            body = await request.json()
        except ValueError:
            return _fcm_error(400, "Invalid JSON payload received.")
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return _fcm_error(400, "Invalid JSON payload: 'message' is required.")
        token = message.get("token")
        if not isinstance(token, str) or not _FCM_TOKEN.match(token):
            return _fcm_error(
                400,
                "The registration token is not a valid FCM registration token",
                "INVALID_ARGUMENT",
                field="message.token",
            )
        if token in self._unregistered:
            return _fcm_error(404, "Requested entity was not found.", "UNREGISTERED")
        notification = message.get("notification", {})
        data = message.get("data", {})
        if not isinstance(notification, dict) or not all(
            isinstance(notification.get(k, ""), str) for k in ("title", "body")
        ):
            return _fcm_error(400, "Invalid value at 'message.notification'", "INVALID_ARGUMENT")
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            # FCM data is a map of strings; numbers or nested objects are refused.
            return _fcm_error(400, "Invalid value at 'message.data'", "INVALID_ARGUMENT")
        name = f"projects/{project}/messages/0:{secrets.token_hex(16)}"
        self._keep(
            {
                "name": name,
                "token": token,
                "notification": notification,
                "data": data,
                "collapse": _collapse_keys(message),
                "at": datetime.now(UTC).isoformat(),
            }
        )
        return web.json_response({"name": name})


def _collapse_keys(message: dict[str, Any]) -> dict[str, Any]:
    """The collapse keys an FCM message sets for each platform."""

    def at(*path: str) -> Any:
        value: Any = message
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        return value

    return {
        "android": at("android", "collapse_key"),
        "android_tag": at("android", "notification", "tag"),
        "apns": at("apns", "headers", "apns-collapse-id"),
        "webpush": at("webpush", "headers", "Topic"),
    }


def settings_for(fcm: FcmSink, vapid_private_key: str) -> dict[str, Any]:
    """Settings updates (for `Settings.model_copy(update=...)`) that send web push with this
    VAPID key and mobile push to `fcm` with its static access token."""
    return {
        "vapid_private_key": SecretStr(vapid_private_key),
        "fcm_endpoint": fcm.base_url,
        "fcm_project_id": fcm.project_id,
        "fcm_access_token": SecretStr(fcm.access_token),
        "fcm_credentials_file": None,
    }
