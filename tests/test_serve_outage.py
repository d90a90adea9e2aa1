"""The store partitioned away (PostgreSQL behind a TCP proxy that stops forwarding): `workbench serve` keeps
accepting OTLP from keys it has seen (spooled before the 200, as the wrapper keeps spooling) and ingest catches
up once the store answers again."""

from __future__ import annotations

import json
import time

import httpx

from workbench.store import keys as key_rows
from workbench.store import open_store
from workbench.store import traces as trace_rows

from .reliability.conftest import pg_proxy_url  # noqa: F401 - fixture
from .serve_support import ServeThread, wait_for


def _body(start: int, n: int = 5) -> bytes:
    spans = [
        {
            "traceId": f"{i:032x}",
            "spanId": f"{i:016x}",
            "name": "chat",
            "startTimeUnixNano": str(1764800000000000000 + i),
            "endTimeUnixNano": str(1764800000100000000 + i),
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.response.id", "value": {"stringValue": f"resp-{i}"}},
            ],
        }
        for i in range(start, start + n)
    ]
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()


def test_otlp_is_accepted_while_the_store_is_partitioned_and_lands_after(pg_proxy_url, tmp_path):  # noqa: F811
    url, proxy = pg_proxy_url
    admin = open_store(url)
    with admin.write() as conn:
        key = key_rows.create_key(conn, "collector", ["ingest"])[1]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with ServeThread(url, spool=str(tmp_path / "spool"), ingest_interval=0.2, key_cache_s=0.2) as serve:
        assert httpx.post(f"{serve.url}/v1/traces", content=_body(0), headers=headers).status_code == 200
        proxy.blackhole()
        time.sleep(0.5)  # the key's entry is now stale: its re-check hangs in the partition
        for start in (100, 200, 300):
            t0 = time.monotonic()
            response = httpx.post(f"{serve.url}/v1/traces", content=_body(start), headers=headers, timeout=10)
            assert response.status_code == 200, response.text
            assert time.monotonic() - t0 < 5
        proxy.heal()

        def stored() -> bool:
            with admin.read() as conn:
                return trace_rows.count_traces(conn) == 20

        wait_for(stored, timeout=90, interval=0.5)
    admin.close()
