"""The object apps hold: ``wb = workbench.open()``; ``client = wb.wrap(OpenAI())``; ``wb.flush()``."""

from __future__ import annotations

import atexit
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .capture.ingest import BackgroundIngester, IngestStats, ingest_spool
from .capture.recorder import Recorder, Redactor
from .capture.spool import SpoolWriter
from .capture.wrap import wrap_client
from .prompts import PromptRegistry
from .store import Store, open_store

__all__ = ["Workbench", "open", "spool_dir"]

ClientT = TypeVar("ClientT")


def spool_dir(store: Store) -> Path:
    return Path(os.environ.get("WORKBENCH_SPOOL") or store.home / "spool")


def _disabled() -> bool:
    return os.environ.get("WORKBENCH_DISABLED", "").strip().lower() in ("1", "true", "yes", "on")


class Workbench:
    """A store plus the capture machinery (spool writer and background ingester) for one process."""

    def __init__(
        self,
        store: Store,
        *,
        sample_rate: float = 1.0,
        redact: Redactor | None = None,
        fsync: str = "rotate",
        background_ingest: bool = True,
        ingest_interval: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.spool_dir = spool_dir(store)
        self.sample_rate = sample_rate
        self.redact = redact
        self.disabled = _disabled()
        self.clock = clock
        self._writer = SpoolWriter(self.spool_dir, fsync=fsync)
        self._ingester = BackgroundIngester(store, self.spool_dir, interval=ingest_interval)
        self.prompts = PromptRegistry(store)
        self._background = background_ingest and not self.disabled
        self._feedback: Any = None
        self._closed = False
        self._recorders: list[Recorder] = []
        if self._background:
            self._ingester.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    def wrap(self, client: ClientT, *, sample_rate: float | None = None, redact: Redactor | None = None) -> ClientT:
        """A client that behaves like ``client`` and records every chat/responses call."""
        recorder = Recorder(
            self._writer,
            sample_rate=self.sample_rate if sample_rate is None else sample_rate,
            redact=redact or self.redact,
            enabled=not self.disabled,
            clock=self.clock,
        )
        self._recorders.append(recorder)
        return wrap_client(client, recorder)

    @property
    def feedback(self) -> Any:
        """Explicit feedback API (thumbs, ratings, corrections, comments)."""
        if self._feedback is None:
            from .feedback.explicit import FeedbackAPI

            self._feedback = FeedbackAPI(self.store, catch_up=self._ingest_now)
        return self._feedback

    @property
    def dropped(self) -> int:
        """Records capture could not spool (disk full, unserializable request...)."""
        return sum(r.dropped for r in self._recorders)

    def _ingest_now(self) -> IngestStats:
        """Ingest what is spooled so far, without sealing the open segment (feedback on a call just made)."""
        return ingest_spool(self.store, self.spool_dir, wait=True)

    def flush(self) -> IngestStats:
        """Seal the spool (fsync) and ingest everything into the store now."""
        self._writer.flush()
        return self._ingest_now()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ingester.stop()
        self._writer.close()
        try:
            self.flush()
        finally:
            self.store.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_at_exit(ref: weakref.ref[Workbench]) -> None:
    wb = ref()
    if wb is None or wb._closed:
        return
    wb._ingester.stop()
    wb._writer.close()  # durable in the spool; ingest at exit is best effort
    try:
        wb.flush()
    except Exception:  # noqa: BLE001 - the records stay in the spool for `workbench ingest`
        pass


def open(url: str | os.PathLike[str] | None = None, **options: Any) -> Workbench:  # noqa: A001
    """Open the store (``./.workbench/workbench.db`` by default, or a URL / WORKBENCH_URL) for capture."""
    return Workbench(open_store(url), **options)
