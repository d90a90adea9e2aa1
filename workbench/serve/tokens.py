"""Browser-safe feedback tokens: signed, bound to one trace, with an expiry.

``wbft.<payload>.<signature>``: the payload is base64url JSON ``{"t": trace ref, "e": expiry (unix s),
"k": signing key id}``, the signature base64url HMAC-SHA256 over ``wbft.<payload>`` with the store's
signing secret (store/keys.py). A token lets its holder send feedback on that one trace until it
expires, and nothing else, so an app can hand it to a browser with the answer. Pure: no store, no I/O
(callers pass the secrets), no ASGI stack, so ``wb.feedback_token`` imports it cheaply.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

import orjson

from ..errors import ValidationError

__all__ = ["TOKEN_PREFIX", "TokenError", "TokenGrant", "issue_token", "parse_ttl", "verify_token"]

TOKEN_PREFIX = "wbft."
MAX_TTL_S = 30 * 24 * 3600
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class TokenError(Exception):
    """A token that does not grant anything: malformed, badly signed, or expired (the message says which)."""


@dataclass(frozen=True)
class TokenGrant:
    ref: str  # the trace id (or provider response id) the token is for
    expires_at: float
    key_id: str


def parse_ttl(ttl: str | int | float) -> float:
    """``"2h"``, ``"30m"``, ``"90s"``, ``"1d"`` or seconds; at most 30 days."""
    if isinstance(ttl, int | float) and not isinstance(ttl, bool):
        seconds = float(ttl)
    else:
        match = _TTL.match(str(ttl))
        if match is None:
            raise ValidationError(f"ttl must look like 90s, 30m, 2h or 1d, not {ttl!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_TTL_S:
        raise ValidationError(f"ttl must be more than 0 and at most 30 days, not {ttl!r}")
    return seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signed: str) -> str:
    return _b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def issue_token(
    ref: str, ttl: str | int | float, *, key_id: str, secret: bytes, now: float | None = None
) -> tuple[str, float]:
    """A token for feedback on ``ref`` valid for ``ttl``; returns (token, expiry as unix seconds)."""
    if not isinstance(ref, str) or not ref.strip() or len(ref) > 190 or "\x00" in ref:
        raise ValidationError(f"trace id must be a non-empty string of at most 190 characters, not {ref!r:.60}")
    expires = int((time.time() if now is None else now) + parse_ttl(ttl))
    payload = _b64(orjson.dumps({"t": ref, "e": expires, "k": key_id}))
    signed = TOKEN_PREFIX + payload
    return f"{signed}.{_sign(secret, signed)}", float(expires)


def verify_token(token: str, secrets: dict[str, bytes], *, now: float | None = None) -> TokenGrant:
    """What a token grants; TokenError (one line, safe to show) if it is malformed, forged or expired."""
    if not token.startswith(TOKEN_PREFIX) or token.count(".") != 2:
        raise TokenError("not a workbench feedback token")
    signed, _, signature = token.rpartition(".")
    try:
        claims = orjson.loads(_unb64(signed[len(TOKEN_PREFIX) :]))
        ref, expires, key_id = claims["t"], float(claims["e"]), str(claims["k"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise TokenError("malformed feedback token") from None
    secret = secrets.get(key_id)
    if secret is None or not hmac.compare_digest(_sign(secret, signed), signature):
        raise TokenError("feedback token signature is not valid")
    if (time.time() if now is None else now) >= expires:
        raise TokenError("feedback token has expired")
    if not isinstance(ref, str):
        raise TokenError("malformed feedback token")
    return TokenGrant(ref, expires, key_id)
