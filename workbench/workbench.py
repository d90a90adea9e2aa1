"""The object apps hold: ``wb = workbench.open()``; ``client = wb.wrap(OpenAI())``; ``wb.flush()``.

Opening never fails because the store is out of reach (a database that is down, a closed port, a
schema written by a newer workbench): capture only needs the spool, so it starts spooling, a warning
says why the store is unavailable, and ingest catches up once the store answers. Closing never hangs
and never raises: the last ingest runs with a deadline (``close_timeout``) and whatever it could not
move stays in the spool for the next ingest.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .capture.ingest import BackgroundIngester, IngestStats, ingest_spool
from .capture.recorder import Recorder, Redactor
from .capture.spool import SpoolWriter
from .errors import ConfigError, StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from .prompts import PromptRegistry
    from .store import Store, StoreLocation

__all__ = ["INGEST_MODES", "Workbench", "open", "spool_dir"]

ClientT = TypeVar("ClientT")
log = logging.getLogger("workbench")

INGEST_MODES = ("thread", "process", "off")
# Chosen by measurement (bench/capture_overhead.py, app CPU per call with every thread counted): ingesting
# in a thread of the app adds the parse and insert work (~25-35 us per trace) to the app's own CPU; a
# sidecar process moves it off the app. WORKBENCH_INGEST overrides it for every open() in a process.
DEFAULT_INGEST = "process"
_RETRY_OPEN_S = 2.0


def spool_dir(store: Any) -> Path:
    """The spool directory of a store (or store location): WORKBENCH_SPOOL, else ``<home>/spool``."""
    return Path(os.environ.get("WORKBENCH_SPOOL") or Path(store.home) / "spool")


def _disabled() -> bool:
    return os.environ.get("WORKBENCH_DISABLED", "").strip().lower() in ("1", "true", "yes", "on")


class Workbench:
    """A store plus the capture machinery (spool writer and ingest) for one process."""

    def __init__(
        self,
        store: Store | StoreLocation,
        *,
        sample_rate: float = 1.0,
        redact: Redactor | None = None,
        fsync: str = "rotate",
        ingest: str | None = None,
        background_ingest: bool | None = None,
        ingest_interval: float = 1.0,
        clock: Callable[[], float] | None = None,
        spool_limit: int = 1 << 30,
        segment_bytes: int = 16 << 20,
        close_timeout: float = 5.0,
    ) -> None:
        if ingest is None:
            chosen = os.environ.get("WORKBENCH_INGEST", "").strip().lower() or DEFAULT_INGEST
            ingest = chosen if background_ingest in (None, True) else "off"
        if ingest not in INGEST_MODES:
            raise ConfigError(f"ingest must be one of {', '.join(INGEST_MODES)}, not {ingest!r} (WORKBENCH_INGEST?)")
        self._store: Store | None = None
        if hasattr(store, "engine"):
            self._store = store  # type: ignore[assignment]
            self.location: StoreLocation = store.location  # type: ignore[union-attr]
        else:
            self.location = store  # type: ignore[assignment]
        self.spool_dir = spool_dir(self.location)
        self.sample_rate = sample_rate
        self.redact = redact
        self.disabled = _disabled()
        self.clock = clock
        self.close_timeout = close_timeout
        self.ingest_mode = "off" if self.disabled else ingest
        self._open_error: str | None = None
        self._next_open = 0.0
        self._open_lock = threading.Lock()
        self._writer = SpoolWriter(
            self.spool_dir, fsync=fsync, limit_bytes=spool_limit, max_segment_bytes=segment_bytes
        )
        self._ingester = BackgroundIngester(self._get_store, self.spool_dir, interval=ingest_interval)
        self._prompts: PromptRegistry | None = None
        self._feedback: Any = None
        self._closed = False
        self._recorders: list[Recorder] = []
        self._sidecar: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()
        if self._store is None:
            self._try_open()
        if self.ingest_mode == "thread":
            self._ingester.start()
        elif self.ingest_mode == "process":
            self._sidecar = _start_sidecar(self.location, self.spool_dir, ingest_interval)
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- the store, opened when it can be ---------------------------------------------------------
    def _try_open(self) -> Store | None:
        from .store import open_store

        with self._open_lock:
            if self._store is not None:
                return self._store
            try:
                self._store = open_store(self.location.url)
            except StoreError as exc:
                if self._open_error is None:
                    log.warning(
                        "workbench: store unavailable, capture keeps spooling to %s and ingest catches "
                        "up when it answers: %s",
                        self.spool_dir,
                        exc,
                    )
                self._open_error = str(exc)
                self._next_open = time.monotonic() + _RETRY_OPEN_S
                return None
            if self._open_error is not None:
                log.warning("workbench: store %s is reachable again", self.location.display)
            self._open_error = None
            return self._store

    def _get_store(self, *, now: bool = False) -> Store:
        """The store; while it is unreachable, the background ingester retries every few seconds, a
        call from the app (``now``) retries at once."""
        store = self._store
        if store is not None:
            return store
        if now or time.monotonic() >= self._next_open:
            store = self._try_open()
        if store is None:
            raise StoreUnavailableError(self._open_error or f"store {self.location.display} is unavailable")
        return store

    @property
    def store(self) -> Store:
        """The store (raises StoreUnavailableError while it cannot be reached; capture keeps spooling)."""
        return self._get_store(now=True)

    @property
    def prompts(self) -> PromptRegistry:
        """Prompt registry (``register``, ``get``); needs the store."""
        if self._prompts is None:
            from .prompts import PromptRegistry

            self._prompts = PromptRegistry(self.store)
        return self._prompts

    # -- capture --------------------------------------------------------------------------------
    def wrap(self, client: ClientT, *, sample_rate: float | None = None, redact: Redactor | None = None) -> ClientT:
        """A client that behaves like ``client`` and records every model call: an OpenAI client's (Azure too)
        chat/responses calls, an Anthropic client's messages calls."""
        from .capture.anthropic import is_anthropic_client, wrap_anthropic
        from .capture.wrap import wrap_client

        recorder = Recorder(
            self._writer,
            sample_rate=self.sample_rate if sample_rate is None else sample_rate,
            redact=redact or self.redact,
            enabled=not self.disabled,
            clock=self.clock,
        )
        self._recorders.append(recorder)
        if is_anthropic_client(client):
            return wrap_anthropic(client, recorder)
        return wrap_client(client, recorder)

    def litellm_callback(self, *, sample_rate: float | None = None, redact: Redactor | None = None) -> Any:
        """A LiteLLM callback recording every completion LiteLLM makes, any provider:
        ``litellm.callbacks = [wb.litellm_callback()]``. Context per call: ``metadata={"workbench": {...}}``."""
        from .capture.litellm import make_callback

        recorder = Recorder(
            self._writer,
            sample_rate=self.sample_rate if sample_rate is None else sample_rate,
            redact=redact or self.redact,
            enabled=not self.disabled,
            clock=self.clock,
        )
        self._recorders.append(recorder)
        return make_callback(recorder)

    @property
    def feedback(self) -> Any:
        """Explicit feedback API (thumbs, ratings, corrections, comments)."""
        if self._feedback is None:
            from .feedback.explicit import FeedbackAPI

            self._feedback = FeedbackAPI(self.store, catch_up=self._ingest_now)
        return self._feedback

    def feedback_token(self, trace_id: str, ttl: str | int | float = "2h") -> str:
        """A browser-safe token that lets its holder send feedback on this one trace until ``ttl`` passes
        (``workbench serve``'s /api/feedback); signed with a secret kept in the store."""
        from .serve.tokens import issue_token
        from .store import keys as key_rows

        with self.store.write() as conn:
            secrets = key_rows.signing_secrets(conn, create=True)
        key_id = max(secrets)
        return issue_token(trace_id, ttl, key_id=key_id, secret=secrets[key_id])[0]

    @property
    def dropped(self) -> int:
        """Records capture could not spool (spool full, disk full); each also logged."""
        return sum(r.dropped for r in self._recorders)

    @property
    def encode_failures(self) -> int:
        """Records spooled without their request because it could not be encoded (the trace notes why)."""
        return sum(r.encode_failures for r in self._recorders)

    def _ingest_now(self, timeout: float | None = None) -> IngestStats:
        """Ingest what is spooled so far, without sealing the open segment (feedback on a call just made)."""
        store = self.store
        try:
            return ingest_spool(store, self.spool_dir, wait=True, timeout=timeout)
        except StoreUnavailableError:
            store.engine.dispose()  # stale pooled connections (a file that was read-only, a dead socket)
            raise

    def flush(self) -> IngestStats:
        """Seal the spool (fsync by policy) and ingest everything into the store now."""
        self._writer.flush()
        return self._ingest_now()

    def close(self) -> None:
        """Seal the spool and ingest it, within ``close_timeout`` seconds; never raises, never hangs."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + self.close_timeout
        self._ingester.stop(timeout=self.close_timeout)
        self._writer.close()
        if self._sidecar is not None and self._owner == os.getpid():  # not from a forked worker: it is shared
            _stop_sidecar(self._sidecar)
        outcome: list[BaseException | IngestStats] = []

        def last_ingest() -> None:
            try:
                if self._store is None and self._try_open() is None:
                    raise StoreUnavailableError(self._open_error or "store unavailable")
                outcome.append(self._ingest_now(timeout=max(0.0, deadline - time.monotonic())))
            except BaseException as exc:  # noqa: BLE001 - reported below, never raised
                outcome.append(exc)
            finally:
                if self._store is not None:
                    self._store.close()

        worker = threading.Thread(target=last_ingest, name="workbench-close", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            log.warning(
                "workbench: the store did not answer within %.0f s on close; captured records stay in %s "
                "for `workbench ingest`",
                self.close_timeout,
                self.spool_dir,
            )
        elif outcome and isinstance(outcome[0], BaseException):
            log.warning(
                "workbench: records stay in the spool %s for `workbench ingest`: %s", self.spool_dir, outcome[0]
            )
        elif outcome and outcome[0].skipped:  # type: ignore[union-attr]
            log.info("workbench: another ingester holds the spool; it will ingest the rest")

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_at_exit(ref: weakref.ref[Workbench]) -> None:
    wb = ref()
    if wb is None or wb._closed:
        return
    try:
        wb.close()
    except Exception:  # noqa: BLE001 - the records stay in the spool for `workbench ingest`
        pass


def _start_sidecar(location: StoreLocation, directory: Path, interval: float) -> subprocess.Popen[bytes] | None:
    """``workbench.open(ingest="process")``: a follower process ingests the spool off the app's CPU."""
    env = {**os.environ, "WORKBENCH_URL": location.url, "WORKBENCH_SPOOL": str(directory)}
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workbench.capture.sidecar",
                "--parent",
                str(os.getpid()),
                "--interval",
                str(interval),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        log.warning("workbench: could not start the ingest process (%s); records stay in the spool", exc)
        return None


def _stop_sidecar(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # it finishes its pass and exits; the app's own close ingests the rest
    try:
        proc.wait(timeout=2.0)
    except subprocess.TimeoutExpired:  # it is in a store call; it exits when that returns or its app is gone
        pass


def open(url: str | os.PathLike[str] | None = None, **options: Any) -> Workbench:  # noqa: A001
    """Open the store (``./.workbench/workbench.db`` by default, or a URL / WORKBENCH_URL) for capture.

    Options: ``sample_rate``, ``redact``, ``fsync`` ("rotate", "always", "never"), ``ingest`` ("process",
    the default: a sidecar process; "thread": inside the app; "off": ``workbench ingest [--follow]`` does
    it), ``spool_limit`` (bytes), ``close_timeout`` (seconds). Raises only for a malformed
    URL or option; an unreachable store is a warning and capture spools meanwhile.
    """
    from .store.locate import locate

    return Workbench(locate(url), **options)
