"""PII redaction for candidate text: originals stay in traces, candidates and golden sets get placeholders.

Kinds and placeholders (``counts`` keys in brackets):

- ``[API_KEY]`` (api_key): OpenAI/Anthropic ``sk-...``, AWS ``AKIA...``/``ASIA...``, GitHub ``ghp_...``/
  ``github_pat_...``, Slack ``xox?-``, Google ``AIza...``, Stripe ``sk_live_...``, JWTs, ``Bearer <token>``
  and values labelled as a key/secret/token (``api_key=...``, ``"client_secret": "..."``) that are long and
  high-entropy, plus ``password: ...`` values. The label is kept, only the value is replaced.
- ``[EMAIL]`` (email): ``local@domain.tld``. ``user@localhost`` and ``pkg@1.2`` are not emails.
- ``[IP]`` (ip): IPv4 dotted quads (each octet <= 255) and IPv6 addresses (validated by ``ipaddress``).
  Not redacted, by decision: loopback and unspecified addresses (127.x, ::1, 0.0.0.0, ::) identify nobody
  and are what "how do I reach localhost" questions are about; dotted quads right after a version-like
  cue (``v1.2.3.4``, ``version 1.2.3.4``, ``==1.2.3.4``, ``section 1.2.3.4``) are version or section
  numbers; IPv6-looking strings without any decimal digit (``std::``, ``dead::beef``) are C++ scopes.
  Any other valid address is redacted, even documentation ranges: privacy wins over fidelity.
- ``[CARD]`` (card): 13-19 digit card numbers written unbroken, in 4-4-4-4(-3) groups or Amex 4-6-5
  groups, that start with 2-6 (the major networks) and pass the Luhn check, so order/tracking
  numbers are left alone (a random 16-digit number passes Luhn 1 time in 10; such a rare order
  number is redacted, which is the safe side).
- ``[PHONE]`` (phone): international ``+CC ...`` with 8-15 digits (E.164 limit), US/NANP
  ``(415) 555-0132`` / ``415-555-0132`` / ``415.555.0132`` / ``1-800-555-0199`` (area code 2-9, one
  consistent separator), and national trunk-prefix numbers ``020 7946 0958`` / ``01 23 45 67 89`` (10-11
  digits in space/dash groups). Not phones, by decision: bare digit runs without separators or ``+``
  (order numbers, ids, timestamps), dates (``2024-01-15``, ``01/15/2024``), 7-digit local numbers
  (``555-0132``) and SSN-shaped ``123-45-6789``.

Passes run in the order above (keys first, as they contain digit runs), and placeholders contain no
digits or separators, so redacting twice gives the same text.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["PII_KINDS", "PLACEHOLDERS", "redact_messages", "redact_text", "redact_with_counts"]

PII_KINDS: tuple[str, ...] = ("api_key", "email", "ip", "card", "phone")
PLACEHOLDERS: dict[str, str] = {
    "api_key": "[API_KEY]", "email": "[EMAIL]", "ip": "[IP]", "card": "[CARD]", "phone": "[PHONE]",
}

# Message keys whose values are structure, not user text (and binary-ish subtrees not worth scanning).
_SKIP_KEYS = frozenset({"role", "type", "id", "tool_call_id", "name", "image_url", "input_audio", "file"})

# --- API keys and secrets -------------------------------------------------------------------------
_VENDOR_KEYS = re.compile(
    r"(?<![\w-])(?:"
    r"sk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic
    r"|(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r")(?![\w-])"
)
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/-]{16,}=*)")
_KEY_LABEL = (
    r"api[_ -]?key|apikey|secret(?:[_ -]?(?:key|access[_ -]?key))?|client[_ -]?secret|access[_ -]?token"
    r"|auth[_ -]?token|refresh[_ -]?token|token|private[_ -]?key|access[_ -]?key(?:[_ -]?id)?"
)
_LABELLED_KEY = re.compile(
    rf"(?i)(\b(?:{_KEY_LABEL})[\"']?\s*(?:[:=]|=>)\s*[\"']?)([A-Za-z0-9_\-+/=.~]{{16,}})"
)
_PASSWORD = re.compile(
    r"(?i)(\b(?:password|passwd|pwd)[\"']?\s*[:=]\s*[\"']?)(?!\[[A-Z_]+\])([^\s\"'`,;]{6,})"  # not a placeholder
)

# --- email ----------------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?!\w)")

# --- IP addresses ---------------------------------------------------------------------------------
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,}(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?"
    r"(?:%[0-9A-Za-z_.-]+)?(?![\w:])"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_VERSION_CUE = re.compile(
    r"(?i)(?:\b(?:v|ver|version|release|build|rev|revision|section|chapter|clause|step|rule)\.?|==|>=|<=|~=|!=|§)"
    r"\s*$"
)

# --- cards ----------------------------------------------------------------------------------------
_CARD = re.compile(
    r"(?<![\w+.-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?|\d{4}([ -]?)\d{6}\2\d{5})(?![\w-]|\.\d)"
)

# --- phones ---------------------------------------------------------------------------------------
_PHONE_INTL = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5}))(?:[ .-]?(?:\(\d{1,4}\)|\d{2,5})){1,5}(?!\w)"
)
_PHONE_US = re.compile(
    r"(?<![\w+.-])(?:1([-. ]))?(?:\([2-9]\d{2}\)\s?\d{3}[-. ]\d{4}|[2-9]\d{2}([-. ])\d{3}\2\d{4})(?![\w]|[-.]\d)"
)
_PHONE_NATIONAL = re.compile(r"(?<![\w+.-])0\d{1,4}(?:[ -]\d{2,4}){2,4}(?![\w]|[-.]\d)")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _entropy(token: str) -> float:
    """Shannon entropy in bits per character: random keys score > 3, English words and ids less."""
    counts = Counter(token)
    n = len(token)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_secret(token: str) -> bool:
    has_digit = any(ch.isdigit() for ch in token)
    has_alpha = any(ch.isalpha() for ch in token)
    return has_digit and has_alpha and _entropy(token) >= 3.0


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card(match: re.Match[str]) -> bool:
    digits = _digits(match.group(0))
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits)


def _is_ipv4(match: re.Match[str]) -> bool:
    try:
        address = ipaddress.IPv4Address(match.group(0))
    except ValueError:  # an octet > 255, or a leading zero
        return False
    if address.is_loopback or address.is_unspecified:
        return False
    before = match.string[max(0, match.start() - 24) : match.start()]
    return _VERSION_CUE.search(before) is None


def _is_ipv6(match: re.Match[str]) -> bool:
    text = match.group(0)
    if not any(ch.isdigit() for ch in text):
        return False
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


def _is_intl_phone(match: re.Match[str]) -> bool:
    return 8 <= len(_digits(match.group(0))) <= 15


def _is_national_phone(match: re.Match[str]) -> bool:
    return 10 <= len(_digits(match.group(0))) <= 11


def _vendor_key_ok(match: re.Match[str]) -> bool:
    token = match.group(0)
    # ``sk-some-long-hyphenated-phrase`` is prose; a real key mixes letters and digits.
    return any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token)


_Check = Callable[[re.Match[str]], bool]
# (kind, pattern, validity check, group holding the secret value (0 = whole match), needs a digit)
_RULES: tuple[tuple[str, re.Pattern[str], _Check | None, int, bool], ...] = (
    ("api_key", _VENDOR_KEYS, _vendor_key_ok, 0, True),
    ("api_key", _BEARER, lambda m: _looks_secret(m.group(2)), 2, True),
    ("api_key", _LABELLED_KEY, lambda m: _looks_secret(m.group(2)), 2, True),
    ("api_key", _PASSWORD, None, 2, False),
    ("email", _EMAIL, None, 0, False),
    ("ip", _IPV6, _is_ipv6, 0, True),
    ("ip", _IPV4, _is_ipv4, 0, True),
    ("card", _CARD, _is_card, 0, True),
    ("phone", _PHONE_INTL, _is_intl_phone, 0, True),
    ("phone", _PHONE_US, None, 0, True),
    ("phone", _PHONE_NATIONAL, _is_national_phone, 0, True),
)
_DIGIT = re.compile(r"\d")


def redact_text(text: str, counts: Counter[str] | None = None) -> str:
    """Replace PII in ``text`` with typed placeholders; add one count per replacement to ``counts``."""
    if not text:
        return text
    has_digit = _DIGIT.search(text) is not None  # most rules cannot match digit-free prose: skip them
    for kind, pattern, check, group, needs_digit in _RULES:
        if needs_digit and not has_digit:
            continue
        if kind == "email" and "@" not in text:
            continue
        placeholder = PLACEHOLDERS[kind]

        def replace(match: re.Match[str], kind: str = kind, check: _Check | None = check,
                    group: int = group, placeholder: str = placeholder) -> str:
            if check is not None and not check(match):
                return match.group(0)
            if counts is not None:
                counts[kind] += 1
            if group == 0:
                return placeholder
            whole = match.group(0)
            start = match.start(group) - match.start(0)
            end = match.end(group) - match.start(0)
            return whole[:start] + placeholder + whole[end:]

        text = pattern.sub(replace, text)
    return text


def redact_with_counts(text: str) -> tuple[str, dict[str, int]]:
    """Redacted text plus how many of each PII kind were replaced (for provenance)."""
    counts: Counter[str] = Counter()
    return redact_text(text, counts), dict(counts)


def _redact_value(value: Any, counts: Counter[str] | None) -> Any:
    if isinstance(value, str):
        return redact_text(value, counts)
    if isinstance(value, dict):
        return {
            key: (item if key in _SKIP_KEYS else _redact_value(item, counts)) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(item, counts) for item in value]
    return value


def redact_messages(
    messages: Iterable[dict[str, Any]], counts: Counter[str] | None = None
) -> list[dict[str, Any]]:
    """A redacted deep copy of chat messages; the input list is not modified.

    String ``content``, content-part lists (``{"type": "text", "text": ...}``), tool-call arguments and
    any other nested strings are redacted; structural keys (role, type, id, name, tool_call_id) and
    image/audio/file parts are copied as they are.
    """
    return [_redact_value(message, counts) for message in messages]
