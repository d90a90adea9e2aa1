"""PII redaction: each kind with positive and hard-negative cases, messages, counts, idempotence."""

from __future__ import annotations

import copy
from collections import Counter

import pytest

from workbench.candidates.redact import PII_KINDS, redact_messages, redact_text, redact_with_counts

GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5" * 3 + "F6g7H8"  # 36 characters after the prefix
OPENAI_KEY = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

POSITIVE = [
    # email
    ("write to jane.doe+news@example.co.uk today", "write to [EMAIL] today", "email"),
    ("MAIL: Bob_Smith@mail.Example.org.", "MAIL: [EMAIL].", "email"),
    # phone: international, US/NANP, national trunk formats
    ("call +44 20 7946 0958 now", "call [PHONE] now", "phone"),
    ("call +1 (415) 555-0132 now", "call [PHONE] now", "phone"),
    ("ring +33 1 23 45 67 89", "ring [PHONE]", "phone"),
    ("ring +91 98765 43210", "ring [PHONE]", "phone"),
    ("my cell is (415) 555-0132", "my cell is [PHONE]", "phone"),
    ("my cell is 415-555-0132.", "my cell is [PHONE].", "phone"),
    ("my cell is 415.555.0132", "my cell is [PHONE]", "phone"),
    ("toll free 1-800-555-0199", "toll free [PHONE]", "phone"),
    ("office 020 7946 0958", "office [PHONE]", "phone"),
    ("bureau 01 23 45 67 89", "bureau [PHONE]", "phone"),
    # card (Luhn-valid test numbers)
    ("card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27", "card"),
    ("card 4111111111111111", "card [CARD]", "card"),
    ("mc 5500-0000-0000-0004", "mc [CARD]", "card"),
    ("amex 3782 822463 10005", "amex [CARD]", "card"),
    # api keys and secrets (the label stays, the value goes)
    (f"my key is {OPENAI_KEY}", "my key is [API_KEY]", "api_key"),
    ("old key sk-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9", "old key [API_KEY]", "api_key"),
    ("aws AKIAIOSFODNN7EXAMPLE here", "aws [API_KEY] here", "api_key"),
    (f"token {GITHUB_TOKEN}", "token [API_KEY]", "api_key"),
    ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "pat [API_KEY]", "api_key"),
    ("Authorization: Bearer abcDEF123456ghiJKL789", "Authorization: Bearer [API_KEY]", "api_key"),
    ("api_key=ZXhhbXBsZS1rZXktOTg3NjU0MzIx", "api_key=[API_KEY]", "api_key"),
    ('{"client_secret": "q8Zr2Lx9Vb4Nm7Tk1Wp6"}', '{"client_secret": "[API_KEY]"}', "api_key"),
    ("password: hunter22", "password: [API_KEY]", "api_key"),
    (f"jwt {JWT}", "jwt [API_KEY]", "api_key"),
    # ip
    ("server at 10.0.0.5, port 22", "server at [IP], port 22", "ip"),
    ("ssh root@192.168.1.10", "ssh root@[IP]", "ip"),
    ("see http://203.0.113.7:8080/x", "see http://[IP]:8080/x", "ip"),
    ("v6 2001:db8::8a2e:370:7334.", "v6 [IP].", "ip"),
    ("link-local fe80::1ff:fe23:4567:890a%eth0 up", "link-local [IP] up", "ip"),
    ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "full [IP]", "ip"),
    # the misses of issue 16 item 8, one each
    ("call 0044 20 7946 0958 now", "call [PHONE] now", "phone"),
    ("card 4111.1111.1111.1111 please", "card [CARD] please", "card"),
    ("ring +44\u00a020\u00a07946\u00a00958", "ring [PHONE]", "phone"),
    ("card 4111\u00a01111\u00a01111\u00a01111", "card [CARD]", "card"),
    ("mail josé@exemple.fr now", "mail [EMAIL] now", "email"),
    ("token hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh ok", "token [API_KEY] ok", "api_key"),
    ("token glpat-Xy3_kP9-mN2qR8sT4vW1 ok", "token [API_KEY] ok", "api_key"),
    (
        "key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY----- end",
        "key [API_KEY] end",
        "api_key",
    ),
    ("from ::ffff:198.51.100.7 today", "from [IP] today", "ip"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY=[API_KEY]", "api_key"),
    ("my password is hunter22", "my password is [API_KEY]", "api_key"),
    (
        "fullwidth \uff0b\uff18\uff11 \uff13-\uff11\uff12\uff13\uff14-\uff15\uff16\uff17\uff18",
        "fullwidth [PHONE]",
        "phone",
    ),
]

NEGATIVE = [
    # email look-alikes
    "ping user@localhost",
    "thanks @maria",
    "npm i lodash@4.17.21",
    # not phones: dates, plain numbers, ids, SSN shape, local 7-digit, ranges, math
    "due 2024-01-15 or 01/15/2024",
    "order id 4155550132",
    "ssn-like 123-45-6789",
    "call 555-0132",
    "years 1990-2010",
    "it costs 1234567 dollars",
    "compute 3 + 4 + 5",
    "timestamp 20240115123045",
    # not cards: Luhn fails, or a prefix no card network uses
    "card 4111 1111 1111 1112",
    "order 1234567890123456",
    "tracking 9400111899223817521456",
    # not keys: prose, short values, placeholders without digits
    "use sk-learn for this",
    "sk-this-is-a-long-hyphenated-phrase",
    "api_key = YOUR_API_KEY_HERE",
    "password is incorrect",
    "the bearer of bad news",
    "token: abc",
    # not IPs: version cues, too many parts, bad octets, loopback, C++ scopes, times, MACs
    "version 1.2.3.4",
    "v1.2.3.4",
    "pip install foo==1.2.3.4",
    "see section 4.2.1.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "localhost 127.0.0.1 and 0.0.0.0",
    "ipv6 loopback ::1",
    "std::vector<int>",
    "at 10:30:45",
    "mac 00:1a:2b:3c:4d:5e",
    # number shapes that separators alone do not make phones or cards
    "ISBN 978-3-16-148410-0",
    "population 8 000 000 000 people",
    "pi is 3.14159 26535",
    "ref 12 345 678 90",
    "the range 100-200-300",
    "+1 for this idea",
    "+44 is the UK code",
    "coordinates 40.7128, -74.0060",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "version 10.0.19041.1415",
    "time 2024-01-15T12:30:45Z",
    "zip 90210-1234",
    "error 0x80070005 again",
    "matrix a@b.T is fine",
    "sk-learn-is-great-for-this-task",
    "the password is incorrect again",
]


@pytest.mark.parametrize(("text", "expected", "kind"), POSITIVE)
def test_each_pii_kind_is_replaced_with_its_placeholder(text: str, expected: str, kind: str) -> None:
    redacted, counts = redact_with_counts(text)
    assert redacted == expected
    assert counts == {kind: 1}


@pytest.mark.parametrize("text", NEGATIVE)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert redact_with_counts(text) == (text, {})


def test_every_kind_is_covered_by_positive_cases() -> None:
    assert {kind for _, _, kind in POSITIVE} | {"name"} == set(PII_KINDS)  # names: messages only, below


def test_mixed_text_counts_every_replacement() -> None:
    text = (
        f"I'm ann@example.com, +1 415-555-0132; card 4111111111111111; server 10.1.2.3 and 10.1.2.4; key {OPENAI_KEY}"
    )
    redacted, counts = redact_with_counts(text)
    assert counts == {"email": 1, "phone": 1, "card": 1, "ip": 2, "api_key": 1}
    assert "ann@" not in redacted and "4111" not in redacted and "10.1.2" not in redacted
    assert redacted.count("[IP]") == 2


def test_redaction_is_idempotent() -> None:
    text = " ".join(t for t, _, _ in POSITIVE)
    once = redact_text(text)
    assert redact_with_counts(once) == (once, {})


def test_empty_text_is_returned_as_is() -> None:
    assert redact_text("") == ""


def test_messages_string_and_part_content_are_redacted_without_mutating_input() -> None:
    messages = [
        {"role": "system", "content": "Support bot. Escalate to ops@example.com."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "My IP is 198.51.100.23"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png?who=x@example.com"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"phone": "+44 20 7946 0958"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "name": "lookup", "content": "card 4111 1111 1111 1111"},
    ]
    original = copy.deepcopy(messages)
    counts: Counter[str] = Counter()
    redacted = redact_messages(messages, counts)

    assert messages == original
    assert redacted[0]["content"] == "Support bot. Escalate to [EMAIL]."
    assert redacted[1]["content"][0] == {"type": "text", "text": "My IP is [IP]"}
    assert redacted[1]["content"][1] == original[1]["content"][1]  # image parts are not scanned
    assert redacted[2]["tool_calls"][0]["function"]["arguments"] == '{"phone": "[PHONE]"}'
    assert redacted[2]["tool_calls"][0]["id"] == "call_1"
    assert redacted[3]["content"] == "card [CARD]"
    assert counts == {"email": 1, "ip": 1, "phone": 1, "card": 1}


def test_a_participants_name_is_redacted_a_tools_name_is_not() -> None:
    messages = [
        {"role": "user", "name": "jose_garcia", "content": "hello"},
        {"role": "assistant", "name": "[NAME]", "content": "hi"},
        {"role": "tool", "tool_call_id": "c1", "name": "lookup_order", "content": "ok"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}],
        },
    ]
    counts: Counter[str] = Counter()
    redacted = redact_messages(messages, counts)
    assert redacted[0]["name"] == "[NAME]" and messages[0]["name"] == "jose_garcia"
    assert redacted[2]["name"] == "lookup_order"
    assert redacted[3]["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert counts == {"name": 1}  # an already-redacted name is not counted again


def test_phone_run_with_a_neighbouring_number_still_finds_the_phone() -> None:
    assert redact_text("call 020 7946 0958 2 times") == "call [PHONE] 2 times"
