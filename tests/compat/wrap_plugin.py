"""pytest plugin (``-p wrap_plugin``) that runs the openai SDK's own tests against ``wb.wrap(client)``.

Loaded by tests/compat/run_sdk_suite.py inside the SDK's unpacked sdist, in a venv holding that openai
version. With ``WB_COMPAT_MODE=wrapped``, every OpenAI/AsyncOpenAI client a test receives (fixture
arguments, and clients held as test-class attributes) is replaced by ``wb.wrap(client)`` just before
the test body runs; with ``plain`` nothing is replaced. Either way it writes a JSON report
(``WB_COMPAT_REPORT``): each test's outcome, the recording calls made (requests that reached the SDK's
own ``post`` for chat.completions or responses from a wrapped client, counted by a counter set on the
SDK's base class, not by the wrapper), and the traces that landed in the store.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

_MODE = os.environ.get("WB_COMPAT_MODE", "plain")
_REPORT = os.environ.get("WB_COMPAT_REPORT")
_ROUTES = ("/chat/completions", "/responses")

_state: dict[str, Any] = {"outcomes": {}, "calls": 0, "wb": None, "wrapped": {}}


def _workbench() -> Any:
    if _state["wb"] is None:
        import workbench

        home = Path(tempfile.mkdtemp(prefix="wb-compat-"))
        _state["home"] = home
        _state["wb"] = workbench.open(f"sqlite:///{home / 'wb.db'}", background_ingest=False)
    return _state["wb"]


def _count_posts() -> None:
    """Count, on the SDK's own base classes, posts to recorded routes made by wrapped clients."""
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    from workbench.capture.wrap import _RecordingClient

    sync_post, async_post = SyncAPIClient.post, AsyncAPIClient.post

    def counted_post(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self, _RecordingClient) and path in _ROUTES:
            _state["calls"] += 1
        return sync_post(self, path, *args, **kwargs)

    async def counted_apost(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self, _RecordingClient) and path in _ROUTES:
            _state["calls"] += 1
        return await async_post(self, path, *args, **kwargs)

    SyncAPIClient.post = counted_post  # type: ignore[method-assign]
    AsyncAPIClient.post = counted_apost  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    if _MODE == "wrapped":
        _count_posts()


def _wrap(value: Any) -> Any:
    import openai

    if isinstance(value, (openai.OpenAI, openai.AsyncOpenAI)):
        from workbench.capture.wrap import _RecordingClient

        if isinstance(value, _RecordingClient):
            return value
        wrapped = _state["wrapped"].get(id(value))
        if wrapped is None or wrapped[0] is not value:
            wrapped = (value, _workbench().wrap(value))
            _state["wrapped"][id(value)] = wrapped
        return wrapped[1]
    return value


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    if _MODE != "wrapped":
        return
    for name, value in list(pyfuncitem.funcargs.items()):
        pyfuncitem.funcargs[name] = _wrap(value)
    instance = getattr(pyfuncitem, "instance", None)
    if instance is not None:
        for name, value in vars(type(instance)).items():
            wrapped = _wrap(value)
            if wrapped is not value:
                setattr(instance, name, wrapped)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    outcomes = _state["outcomes"]
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcomes[report.nodeid] = report.outcome
    elif report.when == "teardown" and report.outcome == "failed":
        outcomes[report.nodeid] = "failed"


def pytest_sessionfinish(session: pytest.Session) -> None:
    traces = 0
    statuses: dict[str, int] = {}
    dropped = 0
    if _state["wb"] is not None:
        from sqlalchemy import func, select

        from workbench.store.schema import traces as table

        gc.collect()  # streams dropped half-read are recorded when collected
        wb = _state["wb"]
        wb.flush()
        with wb.store.read() as conn:
            traces = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for status, n in conn.execute(select(table.c.status, func.count()).group_by(table.c.status)):
                statuses[status] = int(n)
        dropped = wb.dropped
        wb.close()
    if _REPORT:
        Path(_REPORT).write_text(
            json.dumps(
                {
                    "mode": _MODE,
                    "outcomes": _state["outcomes"],
                    "recording_calls": _state["calls"],
                    "traces": traces,
                    "statuses": statuses,
                    "dropped": dropped,
                },
                indent=1,
            )
        )
