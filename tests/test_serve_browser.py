"""A real browser (Chromium, headless) posting feedback to `workbench serve` from a page of another origin.

The page is served from its own loopback port (another origin than serve's); it sends a thumbs-down with a
token from ``wb.feedback_token`` (lands), the same with an expired token and with a token for another trace
(refused, and the page can read why: CORS headers are on errors too), and a page from an origin not in
``--cors-origin`` is stopped at the preflight. Skips, saying why, when /usr/bin/chromium is absent
(``apt-get install chromium``).
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

import workbench
from workbench.serve.tokens import issue_token
from workbench.store import feedback as feedback_rows
from workbench.store import keys as key_rows

from .openai_fakes import FakeOpenAI, chat_body
from .serve_support import ServeThread

CHROMIUM = Path("/usr/bin/chromium")

PAGE = """<!doctype html><html><body><pre id="out">running</pre><script>
const serve = %(serve)s, cases = %(cases)s;
async function post(token, body) {
  try {
    const r = await fetch(serve + "/api/feedback", {method: "POST",
      headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"}, body: JSON.stringify(body)});
    return {status: r.status, body: await r.json()};
  } catch (e) { return {status: 0, error: String(e)}; }
}
(async () => {
  const results = {};
  for (const [name, token, body] of cases) results[name] = await post(token, body);
  document.getElementById("out").textContent = "RESULTS" + JSON.stringify(results) + "END";
})();
</script></body></html>"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _chromium_dom(url: str, profile: Path) -> str:
    command = [
        str(CHROMIUM),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return done.stdout


def _results(dom: str) -> dict:
    found = re.search(r'<pre id="out">RESULTS(.*?)END</pre>', dom, re.S)
    assert found, f"the page did not finish: {dom[-500:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium: apt-get install chromium (Debian package)")
def test_browser_on_another_origin_posts_a_thumbs_down_with_a_token(sqlite_url, tmp_path):
    wb = workbench.open(sqlite_url, ingest="off")
    fake = FakeOpenAI().push(chat_body(rid="chatcmpl-b1"), chat_body(rid="chatcmpl-b2"))
    client = wb.wrap(fake.client())
    first = workbench.trace_id(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}]))
    second = workbench.trace_id(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "b"}]))
    wb.flush()
    token = wb.feedback_token(first, ttl="2h")
    other_token = wb.feedback_token(second, ttl="2h")
    with wb.store.write() as conn:
        secrets = key_rows.signing_secrets(conn)
    kid = max(secrets)
    expired, _ = issue_token(first, 60, key_id=kid, secret=secrets[kid], now=time.time() - 3600)

    site = tmp_path / "site"
    site.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    page_port = httpd.server_address[1]
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    for server in (httpd, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    allowed = f"http://127.0.0.1:{page_port}"
    unlisted_origin = f"http://127.0.0.1:{other.server_address[1]}"  # another port is another origin
    try:
        with ServeThread(sqlite_url, cors_origins=[allowed]) as serve:
            cases = [
                ["thumbs_down", token, {"kind": "thumbs", "value": 0, "idempotency_key": "click-91"}],
                ["expired", expired, {"kind": "thumbs", "value": 0}],
                ["foreign", other_token, {"kind": "thumbs", "value": 0, "trace_id": first}],
            ]
            (site / "feedback.html").write_text(PAGE % {"serve": json.dumps(serve.url), "cases": json.dumps(cases)})
            results = _results(_chromium_dom(f"{allowed}/feedback.html", tmp_path / "profile-a"))

            unlisted_cases = [["unlisted", token, {"kind": "thumbs", "value": 0, "idempotency_key": "click-92"}]]
            (site / "unlisted.html").write_text(
                PAGE % {"serve": json.dumps(serve.url), "cases": json.dumps(unlisted_cases)}
            )
            unlisted = _results(_chromium_dom(f"{unlisted_origin}/unlisted.html", tmp_path / "profile-b"))
    finally:
        httpd.shutdown()
        other.shutdown()

    assert results["thumbs_down"]["status"] == 201, results
    assert results["thumbs_down"]["body"]["trace_id"] == first
    assert results["expired"]["status"] == 401 and "expired" in results["expired"]["body"]["error"]
    assert results["foreign"]["status"] == 403 and "another trace" in results["foreign"]["body"]["error"]
    assert unlisted["unlisted"]["status"] == 0 and "Failed to fetch" in unlisted["unlisted"]["error"]
    with wb.store.read() as conn:
        stored = feedback_rows.list_feedback(conn)
    assert [(f.trace_id, f.signal, f.value, f.idempotency_key) for f in stored] == [(first, "thumbs", 0.0, "click-91")]
    wb.close()
