"""PII redaction for candidate text: originals stay in traces, candidates and golden sets get placeholders.

Detection runs on a same-length normalised copy of the text (Unicode spaces such as U+00A0, U+202F and
U+2009 become a space, Unicode dashes such as U+2013 and U+2011 a hyphen, any decimal digit, fullwidth
included, its ASCII digit; zero-width characters a space), so ``4111\u00a01111\u00a01111\u00a01111`` and
``\uff0b\uff18\uff11 \uff13-\uff11\uff12\uff13\uff14-\uff15\uff16\uff17\uff18`` are found; the matched spans
are then replaced in the original text. Each detector yields spans; where spans overlap, the kind
listed first below wins, so a key's digits never become a phone number.

Kinds and placeholders (``counts`` keys in brackets):

- ``[API_KEY]`` (api_key): PEM private keys (RFC 7468 ``-----BEGIN ... PRIVATE KEY-----`` blocks, PGP
  private key blocks, also with ``\\n`` escapes inside JSON); provider tokens by their documented
  prefixes: OpenAI ``sk-``/``sk-proj-``/``sk-svcacct-``/``sk-admin-``, Anthropic ``sk-ant-...``, AWS
  ``AKIA``/``ASIA``/..., GitHub ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_``/``github_pat_``, GitLab
  ``glpat-``/``gldt-``/``glrt-``/..., Hugging Face ``hf_``/``api_org_``, Slack ``xox?-``/``xapp-`` and
  webhook URLs, Stripe ``sk_``/``rk_``/``pk_`` live/test keys and ``whsec_``, Google ``AIza``, ``GOCSPX-``
  and ``ya29.``, npm ``npm_``, PyPI ``pypi-``, JWTs; ``Bearer <token>``; values labelled as a key,
  secret or token (``OPENAI_API_KEY=...``, ``aws_secret_access_key = ...``, ``"client_secret": "..."``)
  that are long and high-entropy; passwords (``password: ...``, ``my password is hunter22``). The label
  is kept, only the value is replaced.
- ``[EMAIL]`` (email): ``local@domain.tld`` with Unicode letters anywhere (RFC 6531: ``josé@exemple.fr``,
  ``用户@例子.广告``) and IDN A-labels. ``user@localhost`` and ``pkg@1.2`` are not emails.
- ``[IP]`` (ip): IPv4 dotted quads (octets <= 255, leading zeros allowed) and IPv6 in every RFC 5952 /
  4291 form, IPv4-mapped and NAT64 forms included (``::ffff:198.51.100.7`` is one address), validated by
  ``ipaddress``. Not redacted, by decision: loopback and unspecified addresses (127.x, ::1, 0.0.0.0, ::)
  identify nobody; dotted quads right after a version-like cue (``v1.2.3.4``, ``==1.2.3.4``, ``section
  1.2.3.4``); IPv6-looking strings without a decimal digit (``std::``, ``dead::beef``) are C++ scopes.
- ``[CARD]`` (card): 13-19 digit numbers unbroken or in 4-4-4-4(-3), 4-6-5 and 4-6-4 groups separated by
  spaces, hyphens or full stops (one kind throughout), starting with 2-6 (the major networks' IIN
  ranges) and passing the Luhn check, so order numbers are mostly left alone.
- ``[PHONE]`` (phone): validated with ``phonenumbers`` (Google's libphonenumber metadata).
  International numbers (``+CC``, or the ``00``/``011`` international prefixes, ``tel:`` URIs) are
  phones when their length is possible for the country. National numbers need separators and either
  the NANP shape ``(415) 555-0132`` / ``415-555-0132`` valid for US/CA, a trunk prefix ``0`` and a
  number valid in a country that dials one (``020 7946 0958``, ``03-1234-5678``), or 10-11 digits in
  groups after the ``0`` (``07700 900123``). Not phones, by decision: bare digit runs without ``+``
  (order numbers, ids, timestamps), dates, 7-digit local numbers and SSN-shaped ``123-45-6789``.
- ``[NAME]`` (name): the ``name`` field of a chat message from a participant (system, developer, user,
  assistant); a tool's or function's ``name`` is structure and stays.

Placeholders contain no digits or separators, so redacting twice gives the same text.
"""

from __future__ import annotations

import bisect
import ipaddress
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["PII_KINDS", "PLACEHOLDERS", "redact_messages", "redact_text", "redact_with_counts"]

PII_KINDS: tuple[str, ...] = ("api_key", "email", "ip", "card", "phone", "name")
PLACEHOLDERS: dict[str, str] = {
    "api_key": "[API_KEY]",
    "email": "[EMAIL]",
    "ip": "[IP]",
    "card": "[CARD]",
    "phone": "[PHONE]",
    "name": "[NAME]",
}
_PRIORITY = {kind: rank for rank, kind in enumerate(PII_KINDS)}

# Message keys whose values are structure, not user text (and binary-ish subtrees not worth scanning).
_SKIP_KEYS = frozenset({"role", "type", "id", "tool_call_id", "name", "image_url", "input_audio", "file"})
_PARTICIPANT_ROLES = frozenset({"system", "developer", "user", "assistant"})


# --- normalisation ----------------------------------------------------------------------------------
class _FoldTable(dict[int, str]):
    """``str.translate`` table filled on demand: each non-ASCII character is classified once, when seen."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Nd":
            char = str(unicodedata.digit(char))
        elif category == "Zs":
            char = " "
        elif category == "Pd":
            char = "-"
        if len(self) < 65_536:  # bounded: text cycling through every code point cannot grow it for ever
            self[code] = char  # unchanged characters map to themselves (None would delete them)
        return char


_FOLD = _FoldTable(
    {
        0x200B: " ",
        0x200C: " ",
        0x200D: " ",
        0x2060: " ",
        0xFEFF: " ",
        0x2212: "-",
        0xFF0B: "+",
        0xFF08: "(",
        0xFF09: ")",
        0xFF0E: ".",
        0xFF20: "@",
        0xFF1A: ":",
    }
)


def _fold(text: str) -> str:
    """The same-length copy detection runs on (module docstring)."""
    return text if text.isascii() else text.translate(_FOLD)


# --- API keys and secrets -------------------------------------------------------------------------
_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----"
    r"(?:.*?-----END \1-----|[A-Za-z0-9+/=\s\\:,.-]*)",
    re.DOTALL,
)
_PREFIXED_KEYS = re.compile(
    r"(?<![\w-])(?:"
    r"sk-ant-[a-z]+\d\d-[A-Za-z0-9_-]{20,}"  # Anthropic
    r"|(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z2-7]{16}"  # AWS key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"  # GitHub
    r"|gl(?:pat|dt|rt|ptt|cbt|oas|soat|ffct|imt|agent|wt)-[A-Za-z0-9_.-]{20,}"  # GitLab
    r"|hf_[A-Za-z0-9]{30,}|api_org_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,}"  # Slack
    r"|https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,}"  # Slack webhooks
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9+/=]{24,}"  # Stripe
    r"|AIza[0-9A-Za-z_-]{35}|GOCSPX-[A-Za-z0-9_-]{24,}|ya29\.[A-Za-z0-9_-]{20,}"  # Google
    r"|npm_[A-Za-z0-9]{36}|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}"  # npm, PyPI
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r")(?![\w-])"
)
_SK_KEYS = re.compile(r"(?<![\w-])sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}(?![\w-])")  # OpenAI
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/-]{16,}=*)")
_KEY_LABEL = (
    r"api[_ -]?key|apikey|secret(?:[_ -]?(?:key|access[_ -]?key))?|client[_ -]?secret|access[_ -]?token"
    r"|auth[_ -]?token|refresh[_ -]?token|token|private[_ -]?key|access[_ -]?key(?:[_ -]?id)?|credentials?"
)
_LABELLED_KEY = re.compile(
    rf"(?i)((?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_-]){{0,3}}(?:{_KEY_LABEL})[\"']?\s*(?:[:=]|=>)\s*[\"']?)"
    r"([A-Za-z0-9_\-+/=.~]{16,})"
)
_PASSWORD = re.compile(
    r"(?i)(\b(?:password|passwd|pwd|passphrase)[\"']?(?:\s*[:=]|\s+is\s*:)\s*[\"']?)(?!\[[A-Z_]+\])"
    r"([^\s\"'`,;]{6,})"
)
_PASSWORD_IS = re.compile(r"(?i)(\b(?:password|passphrase)\s+is\s+)([^\s\"'`,;]{6,})")

# --- email ----------------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+'-])[^\W_][\w.%+'-]*@(?:[^\W_](?:[\w-]*[^\W_])?\.)+(?:[^\W\d_]{2,}|xn--[A-Za-z0-9-]+)(?![\w-])"
)

# --- IP addresses ---------------------------------------------------------------------------------
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?"
    r"(?:%[0-9A-Za-z_.-]+)?(?![\w:]|\.\d)"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_VERSION_CUE = re.compile(
    r"(?i)(?:\b(?:v|ver|version|release|build|rev|revision|section|chapter|clause|step|rule)\.?|==|>=|<=|~=|!=|§)"
    r"\s*$"
)

# --- cards ----------------------------------------------------------------------------------------
_CARD_SEP = r"(?:  |[ .-]?)"
_CARD = re.compile(
    rf"(?<![\w+.,-])(?:\d{{4}}({_CARD_SEP})\d{{4}}\1\d{{4}}\1\d{{1,4}}(?:\1\d{{1,3}})?"
    rf"|\d{{4}}({_CARD_SEP})\d{{6}}\2\d{{4,5}})(?![\w-]|[.,]\d)"
)

# --- phones ---------------------------------------------------------------------------------------
_PHONE_RUN = re.compile(r"(?<![\w+/.,-])(?:\+ ?|\(\+?)?\d(?:[\d()]|[ .-](?=[\d(])|/(?=\d)){5,}\d\)?(?![\w]|[.,-]\d)")
_NANP_SHAPE = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}([ .-]))\d{3}[ .-]\d{4}")
_DATE_SHAPE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_TRUNK_GROUPS = re.compile(r"0\d{1,4}(?:[ -]\d{2,5}){1,4}")
# Countries whose national numbers are dialled with a trunk prefix 0 (Italy keeps its 0 in the number).
_TRUNK_REGIONS = (
    "GB",
    "FR",
    "DE",
    "IT",
    "NL",
    "CH",
    "SE",
    "IE",
    "AT",
    "BE",
    "FI",
    "JP",
    "CN",
    "IN",
    "AU",
    "NZ",
    "BR",
    "ZA",
    "KR",
    "TR",
    "NG",
    "IL",
    "EG",
    "PK",
    "ID",
    "PH",
    "TH",
    "VN",
    "MY",
    "AE",
    "SA",
    "AR",
    "CO",
    "PE",
    "UA",
    "RO",
)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _entropy(token: str) -> float:
    """Shannon entropy in bits per character: random keys score > 3, English words and ids less."""
    counts = Counter(token)
    n = len(token)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _mixes_letters_and_digits(token: str) -> bool:
    return any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token)


def _looks_secret(token: str) -> bool:
    return _mixes_letters_and_digits(token) and _entropy(token) >= 3.0


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


Span = tuple[int, int, str]  # start, end, kind


def _spans(
    pattern: re.Pattern[str], text: str, kind: str, check: Callable[[re.Match[str]], bool] | None = None, group: int = 0
) -> Iterator[Span]:
    for match in pattern.finditer(text):
        if check is None or check(match):
            yield match.start(group), match.end(group), kind


def _key_spans(text: str) -> Iterator[Span]:
    if "-----BEGIN" in text:
        yield from _spans(_PEM, text, "api_key")
    yield from _spans(_PREFIXED_KEYS, text, "api_key")
    if "sk-" in text:  # a real key mixes letters and digits; ``sk-learn-is-great-for-this`` is prose
        yield from _spans(_SK_KEYS, text, "api_key", lambda m: _looks_secret(m.group(0)))
    yield from _spans(_BEARER, text, "api_key", lambda m: _looks_secret(m.group(2)), 2)
    yield from _spans(_LABELLED_KEY, text, "api_key", lambda m: _looks_secret(m.group(2)), 2)
    yield from _spans(_PASSWORD, text, "api_key", None, 2)
    yield from _spans(_PASSWORD_IS, text, "api_key", lambda m: _mixes_letters_and_digits(m.group(2)), 2)


def _is_ipv4(match: re.Match[str]) -> bool:
    octets = match.group(0).split(".")
    if any(int(octet) > 255 for octet in octets):
        return False
    address = ipaddress.IPv4Address(".".join(str(int(octet)) for octet in octets))
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


def _is_card(match: re.Match[str]) -> bool:
    digits = _digits(match.group(0))
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits)


def _phone_ok(candidate: str) -> bool:
    """Whether ``candidate`` (a run of digits and separators) is a phone number, by the rules above."""
    import phonenumbers  # imported on first use: its metadata costs ~40 ms and most text has no phone

    digits = _digits(candidate)
    stripped = candidate.lstrip("(")
    international = None
    if stripped.startswith("+"):
        international = "+" + digits
    elif digits.startswith("00") and not digits.startswith("000"):
        international = "+" + digits[2:]
    elif digits.startswith("011"):
        international = "+" + digits[3:]
    if international is not None:
        try:
            number = phonenumbers.parse(candidate if stripped.startswith("+") else international, None)
        except phonenumbers.NumberParseException:
            return False
        if phonenumbers.is_possible_number(number) and len(str(number.national_number)) >= 6:
            return True
        if stripped.startswith("+"):
            return False
    if candidate == digits or not 9 <= len(digits) <= 12 or _DATE_SHAPE.fullmatch(candidate):
        return False  # a bare digit run, too short or long, or a date
    if _NANP_SHAPE.fullmatch(candidate):
        return any(phonenumbers.is_valid_number(phonenumbers.parse(candidate, r)) for r in ("US", "CA"))
    if digits[0] != "0" or digits.startswith("00"):
        return candidate.startswith("(") and _valid_in_any(phonenumbers, candidate, _TRUNK_REGIONS)
    if _TRUNK_GROUPS.fullmatch(candidate) and 10 <= len(digits) <= 11:
        return True
    return _valid_in_any(phonenumbers, candidate, _TRUNK_REGIONS)


def _valid_in_any(phonenumbers: Any, candidate: str, regions: Iterable[str]) -> bool:
    for region in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


_MAX_PHONE_CHARS = 32  # the longest written phone number with its separators ("011 44 20 7946 0958" is 19)


def _phone_spans(text: str) -> Iterator[Span]:
    for match in _PHONE_RUN.finditer(text):
        candidate = match.group(0)
        start = match.start()
        if len(candidate) > _MAX_PHONE_CHARS:  # a long run of numbers: only its start can be a phone
            cut = max(candidate.rfind(sep, 0, _MAX_PHONE_CHARS + 1) for sep in " .-")
            if cut <= 0:
                continue
            candidate = candidate[:cut]
        if candidate.endswith(")") and candidate.count("(") < candidate.count(")"):
            candidate = candidate[:-1]
        # A run can swallow a neighbouring number ("020 7946 0958 2 times"): drop trailing groups.
        while True:
            if len(_digits(candidate)) <= 17 and _phone_ok(candidate):
                yield start, start + len(candidate), "phone"
                break
            cut = max(candidate.rfind(" "), candidate.rfind("-"), candidate.rfind("."))
            if cut <= 0 or len(_digits(candidate[:cut])) < 7:
                break
            candidate = candidate[:cut].rstrip(" .-")


_DIGIT = re.compile(r"\d")


def _detect(text: str) -> list[Span]:
    """Every PII span in ``text`` (already folded), overlaps resolved by kind priority, in order."""
    found: list[Span] = list(_key_spans(text))
    if "@" in text:
        found += _spans(_EMAIL, text, "email")
    if _DIGIT.search(text) is not None:  # the remaining kinds all need a digit
        if ":" in text:
            found += _spans(_IPV6, text, "ip", _is_ipv6)
        found += _spans(_IPV4, text, "ip", _is_ipv4)
        found += _spans(_CARD, text, "card", _is_card)
        found += _phone_spans(text)
    found.sort(key=lambda span: (_PRIORITY[span[2]], span[0], -span[1]))
    kept: list[Span] = []  # sorted by start, never overlapping: a new span only needs its neighbours checked
    for span in found:
        at = bisect.bisect_left(kept, span)
        if (at == 0 or kept[at - 1][1] <= span[0]) and (at == len(kept) or span[1] <= kept[at][0]):
            kept.insert(at, span)
    return kept


def redact_text(text: str, counts: Counter[str] | None = None) -> str:
    """Replace PII in ``text`` with typed placeholders; add one count per replacement to ``counts``."""
    if not text:
        return text
    spans = _detect(_fold(text))
    if not spans:
        return text
    parts: list[str] = []
    at = 0
    for start, end, kind in spans:
        parts.append(text[at:start])
        parts.append(PLACEHOLDERS[kind])
        at = end
        if counts is not None:
            counts[kind] += 1
    parts.append(text[at:])
    return "".join(parts)


def redact_with_counts(text: str) -> tuple[str, dict[str, int]]:
    """Redacted text plus how many of each PII kind were replaced (for provenance)."""
    counts: Counter[str] = Counter()
    return redact_text(text, counts), dict(counts)


def _redact_value(value: Any, counts: Counter[str] | None) -> Any:
    if isinstance(value, str):
        return redact_text(value, counts)
    if isinstance(value, dict):
        return {key: (item if key in _SKIP_KEYS else _redact_value(item, counts)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item, counts) for item in value]
    return value


def _redact_message(message: Any, counts: Counter[str] | None) -> Any:
    redacted = _redact_value(message, counts)
    if (
        isinstance(message, dict)
        and message.get("role") in _PARTICIPANT_ROLES
        and isinstance(message.get("name"), str)
        and message["name"] not in ("", PLACEHOLDERS["name"])
    ):
        redacted["name"] = PLACEHOLDERS["name"]  # a participant's name identifies them
        if counts is not None:
            counts["name"] += 1
    return redacted


def redact_messages(messages: Iterable[dict[str, Any]], counts: Counter[str] | None = None) -> list[dict[str, Any]]:
    """A redacted deep copy of chat messages; the input list is not modified.

    String ``content``, content-part lists (``{"type": "text", "text": ...}``), tool-call arguments and
    any other nested strings are redacted, and so is a participant message's ``name``; structural keys
    (role, type, id, tool_call_id, a tool's name) and image/audio/file parts are copied as they are.
    """
    return [_redact_message(message, counts) for message in messages]
