"""Console sessions: the API key a user signed in with and the CSRF token of its forms, sealed in a cookie.

The cookie is a Fernet token (AES-CBC encrypted, HMAC-SHA256 signed, carrying its issue time), so it can be
neither read nor forged without the secret, and it is refused once older than the session lifetime. The key is
checked again on every request (a revoked key's session ends at once): the cookie only remembers it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson
from cryptography.fernet import Fernet, InvalidToken

COOKIE = "gleaner_console"
COOKIE_PATH = "/console"
# a sealed session is a few hundred bytes; anything much longer is not one of ours
MAX_COOKIE = 4096
MAX_KEY = 512


@dataclass(frozen=True, slots=True)
class Session:
    key: str
    csrf: str

    def csrf_matches(self, submitted: str | None) -> bool:
        return submitted is not None and hmac.compare_digest(submitted.encode(), self.csrf.encode())


class Sealer:
    """Seals and opens sessions with a key derived from GLEANER_CONSOLE_SECRET (or a random one per process)."""

    def __init__(self, secret: str | None, lifetime_s: float) -> None:
        material = secret.encode() if secret else secrets.token_bytes(32)
        digest = hashlib.sha256(b"gleaner-console-session:" + material).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self.lifetime_s = int(lifetime_s)

    def seal(self, key: str) -> tuple[str, Session]:
        session = Session(key, secrets.token_urlsafe(24))
        token = self._fernet.encrypt(orjson.dumps({"k": session.key, "c": session.csrf}))
        return token.decode("ascii"), session

    def open(self, token: str | None) -> Session | None:
        """The session a cookie holds, or None if it is missing, tampered with, foreign or expired."""
        if not token or len(token) > MAX_COOKIE:
            return None
        try:
            data = orjson.loads(self._fernet.decrypt(token.encode("ascii"), ttl=self.lifetime_s))
        except (InvalidToken, orjson.JSONDecodeError, UnicodeEncodeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("k"), str) or not isinstance(data.get("c"), str):
            return None
        return Session(data["k"], data["c"])
