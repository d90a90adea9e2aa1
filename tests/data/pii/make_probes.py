"""Writes probes.jsonl: PII probes written to the formats' public specifications (run once; output committed).

Each probe is a sentence with one PII item (``pii``, the exact substring that must not survive) of one
``kind``; ``spec`` names the public format it follows. Token bodies are drawn deterministically from the
documented alphabet and length (they are not real credentials). ``split`` is ``dev`` for two of every
three probes and ``heldout`` for the third: the redactor was developed looking at dev results only, and
the held-out figure is reported separately.

    python tests/data/pii/make_probes.py
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

rng = random.Random(20261204)
ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "_-"
UPPER_B32 = string.ascii_uppercase + "234567"


def draw(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def luhn_complete(prefix_digits: str, length: int) -> str:
    body = prefix_digits + "".join(rng.choice(string.digits) for _ in range(length - len(prefix_digits) - 1))
    for check in string.digits:
        candidate = body + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            v = int(ch)
            if i % 2 == 1:
                v = v * 2 - 9 if v * 2 > 9 else v * 2
            total += v
        if total % 10 == 0:
            return candidate
    raise AssertionError


def group(digits: str, sizes: list[int], sep: str) -> str:
    out, at = [], 0
    for size in sizes:
        out.append(digits[at : at + size])
        at += size
    return sep.join(out)


NBSP, NNBSP, THIN, ENDASH, NBHYPHEN = "\u00a0", "\u202f", "\u2009", "\u2013", "\u2011"
probes: list[tuple[str, str, str, str]] = []  # kind, template with {}, pii, spec


def add(kind: str, template: str, pii: str, spec: str) -> None:
    probes.append((kind, template, pii, spec))


# ---------------------------------------------------------------- phones (ITU-T E.164 / E.123, national plans)
E123 = "ITU-T E.123 international notation"
for number, spec in [
    ("+44 20 7946 0958", E123 + "; Ofcom drama range 020 7946 0xxx"),
    ("0044 20 7946 0958", "international prefix 00 (ITU-T E.164 Annex, used in Europe)"),
    ("011 44 20 7946 0958", "NANP international prefix 011"),
    ("+44 7700 900123", "Ofcom drama mobile range 07700 900xxx"),
    ("+1 415 555 0132", E123 + "; NANP fictional 555-01xx"),
    ("+1-212-555-0175", "NANP with hyphens"),
    ("+1 (646) 555-0143", "NANP with parenthesised area code"),
    ("+14155550132", "E.164 without separators"),
    ("+33 1 23 45 67 89", "ARCEP numbering, pairs"),
    ("+33 6 12 34 56 78", "ARCEP mobile"),
    ("+49 30 901820", "Bundesnetzagentur, Berlin"),
    ("+49 (0)30 12345678", "German (0) trunk notation"),
    ("+49 151 23456789", "German mobile"),
    ("+34 912 345 678", "CNMC, Madrid"),
    ("+39 06 1234 5678", "AGCOM, Rome"),
    ("+31 20 123 4567", "ACM, Amsterdam"),
    ("+41 44 668 18 00", "OFCOM CH, Zurich"),
    ("+46 8 123 456 78", "PTS, Stockholm"),
    ("+353 1 234 5678", "ComReg, Dublin"),
    ("+7 495 123-45-67", "Russian notation"),
    ("+81 3-1234-5678", "Japanese notation, Tokyo"),
    ("+81 90-1234-5678", "Japanese mobile"),
    ("+86 10 1234 5678", "China, Beijing"),
    ("+86 139 1234 5678", "China mobile"),
    ("+91 98765 43210", "India mobile"),
    ("+61 2 9876 5432", "ACMA, Sydney"),
    ("+61 412 345 678", "ACMA mobile"),
    ("+55 11 91234-5678", "Anatel, Sao Paulo mobile"),
    ("+52 55 1234 5678", "Mexico City"),
    ("+27 21 123 4567", "ICASA, Cape Town"),
    ("+82 2-123-4567", "Korea, Seoul"),
    ("+65 6123 4567", "Singapore"),
    ("+971 4 123 4567", "UAE, Dubai"),
    ("+234 803 123 4567", "Nigeria mobile"),
    ("+48 22 123 45 67", "Poland, Warsaw"),
    ("+90 212 123 45 67", "Turkey, Istanbul"),
]:
    add("phone", "You can reach me at {} most afternoons.", number, spec)

for number, spec in [
    ("020 7946 0958", "UK national (trunk 0)"),
    ("07700 900123", "UK mobile, national"),
    ("01 23 45 67 89", "France national"),
    ("06 12 34 56 78", "France mobile national"),
    ("030 12345678", "Germany national"),
    ("0151 23456789", "Germany mobile national"),
    ("(415) 555-0132", "NANP national"),
    ("415-555-0132", "NANP with hyphens"),
    ("415.555.0132", "NANP with dots"),
    ("1-800-555-0199", "NANP toll free"),
    ("03-1234-5678", "Japan national"),
    ("090-1234-5678", "Japan mobile national"),
    ("02 9876 5432", "Australia national"),
    ("0412 345 678", "Australia mobile national"),
    ("(11) 91234-5678", "Brazil national"),
    ("098765 43210", "India with trunk 0"),
]:
    add("phone", "Call the office on {} tomorrow.", number, spec)

for sep, name in [
    (NBSP, "no-break space"),
    (NNBSP, "narrow no-break space"),
    (THIN, "thin space"),
    (ENDASH, "en dash"),
    (NBHYPHEN, "non-breaking hyphen"),
]:
    add("phone", "Ring {} if it is urgent.", f"+44{sep}20{sep}7946{sep}0958", f"E.123 with {name} (U+{ord(sep):04X})")
    add(
        "phone",
        "Ring {} if it is urgent.",
        f"415{sep}555{sep}0132" if sep in (ENDASH, NBHYPHEN) else f"(415){sep}555-0132",
        f"NANP with {name}",
    )
add(
    "phone",
    "Fullwidth: {} is my number.",
    "\uff0b\uff18\uff11 \uff13-\uff11\uff12\uff13\uff14-\uff15\uff16\uff17\uff18",
    "fullwidth digits (Unicode Nd), Japanese input methods",
)
add("phone", "Link: tel:{} works on mobile.", "+1-415-555-0132", "RFC 3966 tel URI")

# ---------------------------------------------------------------- cards (ISO/IEC 7812, Luhn; network IIN ranges)
for prefix, length, sizes, network in [
    ("4", 16, [4, 4, 4, 4], "Visa"),
    ("51", 16, [4, 4, 4, 4], "Mastercard 51-55"),
    ("2221", 16, [4, 4, 4, 4], "Mastercard 2-series"),
    ("6011", 16, [4, 4, 4, 4], "Discover"),
    ("35", 16, [4, 4, 4, 4], "JCB"),
    ("62", 16, [4, 4, 4, 4], "UnionPay"),
    ("37", 15, [4, 6, 5], "American Express"),
    ("34", 15, [4, 6, 5], "American Express"),
    ("36", 14, [4, 6, 4], "Diners Club"),
    ("4", 19, [4, 4, 4, 4, 3], "Visa 19 digits"),
    ("6759", 16, [4, 4, 4, 4], "Maestro"),
]:
    digits = luhn_complete(prefix, length)
    add("card", "Charge it to {} please.", group(digits, sizes, " "), f"{network}, space groups")
    add("card", "Card number: {}.", digits, f"{network}, unbroken")
for sep, name in [
    ("-", "hyphen"),
    (".", "full stop"),
    (NBSP, "no-break space"),
    (THIN, "thin space"),
    (NNBSP, "narrow no-break space"),
    ("  ", "double space"),
]:
    digits = luhn_complete("4", 16)
    add("card", "My card {} expires soon.", group(digits, [4, 4, 4, 4], sep), f"Visa, {name} separators")
add("card", "Use {} for the test.", "4111.1111.1111.1111", "Visa test number with full stops")
add("card", "Use {} for the test.", "4111\u00a01111\u00a01111\u00a01111", "Visa test number with no-break spaces")

# ---------------------------------------------------------------- e-mail (RFC 5322, RFC 6531 internationalised)
for address, spec in [
    ("jane.doe@example.com", "RFC 5322 dot-atom"),
    ("jane.doe+billing@example.co.uk", "sub-addressing"),
    ("o'brien@example.ie", "apostrophe in local part (atext)"),
    ("first_last-99@mail.example.org", "underscore, hyphen, digits"),
    ("ADMIN@EXAMPLE.NET", "upper case"),
    ("josé@exemple.fr", "RFC 6531 UTF-8 local part"),
    ("müller@beispiel.de", "RFC 6531, German"),
    ("user@bücher.example", "IDN domain (RFC 5890)"),
    ("用户@例子.广告", "RFC 6531, Chinese local part and domain"),
    ("Δοκιμή@παράδειγμα.δοκιμή", "RFC 6531, Greek"),
    ("пользователь@пример.рф", "RFC 6531, Cyrillic"),
    ("user@xn--bcher-kva.example", "IDN A-label"),
    ("dev.team@sub.domain.example.io", "several labels"),
    ("a@b.co", "shortest common form"),
]:
    add("email", "Send the invoice to {} and cc me.", address, spec)
add("email", "Write to <{}> instead.", "support.lead@example.com", "angle-bracket form (RFC 5322 angle-addr)")
add("email", "Click mailto:{} to reply.", "ana.silva@exemplo.com.br", "RFC 6068 mailto URI")

# ---------------------------------------------------------------- tokens (providers' documented formats)
tokens: list[tuple[str, str]] = [
    ("sk-proj-" + draw(B64URL, 124) + "T3BlbkFJ" + draw(B64URL, 32), "OpenAI project key"),
    ("sk-" + draw(ALNUM, 20) + "T3BlbkFJ" + draw(ALNUM, 20), "OpenAI legacy user key"),
    ("sk-svcacct-" + draw(B64URL, 60), "OpenAI service account key"),
    ("sk-admin-" + draw(B64URL, 60), "OpenAI admin key"),
    ("sk-ant-api03-" + draw(B64URL, 93) + "AA", "Anthropic API key"),
    ("sk-ant-admin01-" + draw(B64URL, 93) + "AA", "Anthropic admin key"),
    ("AKIA" + draw(UPPER_B32, 16), "AWS access key id"),
    ("ASIA" + draw(UPPER_B32, 16), "AWS temporary access key id"),
    ("ghp_" + draw(ALNUM, 36), "GitHub personal access token (classic)"),
    ("gho_" + draw(ALNUM, 36), "GitHub OAuth token"),
    ("ghs_" + draw(ALNUM, 36), "GitHub app installation token"),
    ("ghr_" + draw(ALNUM, 36), "GitHub refresh token"),
    ("github_pat_" + draw(ALNUM, 22) + "_" + draw(ALNUM, 59), "GitHub fine-grained token"),
    ("glpat-" + draw(B64URL, 20), "GitLab personal access token"),
    ("gldt-" + draw(B64URL, 20), "GitLab deploy token"),
    ("glrt-" + draw(B64URL, 20), "GitLab runner token"),
    ("hf_" + draw(string.ascii_letters, 34), "Hugging Face user access token"),
    ("api_org_" + draw(string.ascii_letters, 34), "Hugging Face org token"),
    ("xoxb-" + draw(string.digits, 12) + "-" + draw(string.digits, 13) + "-" + draw(ALNUM, 24), "Slack bot token"),
    (
        "xoxp-"
        + draw(string.digits, 12)
        + "-"
        + draw(string.digits, 12)
        + "-"
        + draw(string.digits, 13)
        + "-"
        + draw("0123456789abcdef", 32),
        "Slack user token",
    ),
    (
        "xapp-1-A" + draw(UPPER_B32, 10) + "-" + draw(string.digits, 13) + "-" + draw("0123456789abcdef", 64),
        "Slack app-level token",
    ),
    (
        "https://hooks.slack.com/services/T" + draw(UPPER_B32, 8) + "/B" + draw(UPPER_B32, 8) + "/" + draw(ALNUM, 24),
        "Slack incoming webhook URL",
    ),
    ("sk_live_" + draw(ALNUM, 99), "Stripe secret key"),
    ("rk_live_" + draw(ALNUM, 99), "Stripe restricted key"),
    ("whsec_" + draw(ALNUM, 32), "Stripe webhook signing secret"),
    ("AIza" + draw(B64URL, 35), "Google API key"),
    ("GOCSPX-" + draw(B64URL, 28), "Google OAuth client secret"),
    ("ya29." + draw(B64URL, 120), "Google OAuth access token"),
    ("npm_" + draw(ALNUM, 36), "npm access token"),
    ("pypi-AgEIcHlwaS5vcmc" + draw(B64URL, 70), "PyPI API token"),
    (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJzdWIiOiJ1LTc3IiwibmFtZSI6Ikpvc2UifQ." + draw(B64URL, 43),
        "JWT (RFC 7519)",
    ),
]
for token, spec in tokens:
    add("api_key", "Here is my key {} - keep it safe.", token, spec)
add("api_key", "export AWS_SECRET_ACCESS_KEY={}", draw(ALNUM + "/+", 40), "AWS secret access key, labelled")
add("api_key", "aws_secret_access_key = {}", draw(ALNUM + "/+", 40), "AWS credentials file")
add("api_key", "Authorization: Bearer {}", draw(B64URL, 40), "RFC 6750 bearer token")
add("api_key", "my password is: {}", "Tr0ub4dor&3x", "labelled password")

PEM_BODY = "\n".join(draw(ALNUM + "+/", 64) for _ in range(6)) + "\n" + draw(ALNUM + "+/", 20) + "=="
for label in [
    "RSA PRIVATE KEY",
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "DSA PRIVATE KEY",
]:
    pem = f"-----BEGIN {label}-----\n{PEM_BODY}\n-----END {label}-----"
    add("api_key", "The server key is\n{}\nand the cert follows.", pem, f"RFC 7468 PEM, {label}")
pgp = (
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"
    + PEM_BODY
    + "\n="
    + draw(ALNUM, 4)
    + "\n-----END PGP PRIVATE KEY BLOCK-----"
)
add("api_key", "Backup:\n{}\n", pgp, "RFC 4880 ASCII armor, private key block")
json_pem = "-----BEGIN PRIVATE KEY-----\\n" + PEM_BODY.replace("\n", "\\n") + "\\n-----END PRIVATE KEY-----\\n"
add(
    "api_key",
    '{{"type": "service_account", "private_key": "{}"}}',
    json_pem,
    "Google service-account JSON (PEM with escaped newlines)",
)

# ---------------------------------------------------------------- IP addresses (RFC 791 / RFC 4291 / RFC 5952)
for address, spec in [
    ("198.51.100.7", "IPv4 dotted quad (RFC 5737 TEST-NET-2)"),
    ("203.0.113.254", "IPv4 TEST-NET-3"),
    ("192.168.1.23", "IPv4 private (RFC 1918)"),
    ("10.20.30.40", "IPv4 private"),
    ("100.64.12.9", "IPv4 shared CGNAT (RFC 6598)"),
    ("8.8.4.4", "IPv4 short octets"),
    ("::ffff:198.51.100.7", "IPv4-mapped IPv6 (RFC 4291 2.5.5.2)"),
    ("::ffff:c633:6407", "IPv4-mapped IPv6, hex form"),
    ("64:ff9b::192.0.2.33", "NAT64 well-known prefix (RFC 6052)"),
    ("2001:db8::8a2e:370:7334", "IPv6 compressed (RFC 5952)"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "IPv6 full form"),
    ("2001:DB8:0:0:1::1", "IPv6 upper case"),
    ("fe80::1ff:fe23:4567:890a%eth0", "IPv6 link-local with zone (RFC 4007)"),
    ("2a00:1450:4001:82b::200e", "IPv6 global"),
    ("fd12:3456:789a:1::1", "IPv6 unique local (RFC 4193)"),
]:
    add("ip", "The request came from {} at noon.", address, spec)
add("ip", "Connect to [{}]:8443 over TLS.", "2001:db8::17", "IPv6 in brackets with port (RFC 3986)")
add("ip", "Open http://{}:8080/admin in a browser.", "203.0.113.7", "IPv4 in a URL with port")
add("ip", "Block the subnet {}/24 now.", "198.51.100.0", "IPv4 CIDR (RFC 4632)")
add("ip", "Route {}/64 to the VPN.", "2001:db8:abcd:12::", "IPv6 prefix")
add("ip", "X-Forwarded-For: {}, 10.0.0.1", "198.51.100.23", "IPv4 in a header list")


def main() -> None:
    out = Path(__file__).with_name("probes.jsonl")
    with out.open("w", encoding="utf-8") as handle:
        for index, (kind, template, pii, spec) in enumerate(probes):
            text = template.format(pii)
            assert text.count(pii) == 1, text
            split = "heldout" if index % 3 == 2 else "dev"
            record = {"id": f"{kind}-{index:03d}", "kind": kind, "text": text, "pii": pii, "spec": spec, "split": split}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{len(probes)} probes -> {out}")


if __name__ == "__main__":
    main()
