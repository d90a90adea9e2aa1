"""Feedback commands: add one, import a JSONL file, list."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer

from ..errors import NotFoundError, SpoolError, ValidationError
from ._common import age, console, err_console, get_store, parse_since, print_json, table

if TYPE_CHECKING:
    from ..feedback.explicit import FeedbackAPI


def _feedback_api(ctx: typer.Context) -> FeedbackAPI:
    """Feedback on a trace the app captured a moment ago: an unknown ref ingests the spool (once) first."""
    from ..capture.ingest import ingest_spool
    from ..feedback.explicit import FeedbackAPI
    from ..workbench import spool_dir

    store = get_store(ctx)
    done = False

    def catch_up() -> None:
        nonlocal done
        if not done:
            done = True
            try:
                ingest_spool(store, spool_dir(store), wait=True)
            except SpoolError:
                pass  # an unreadable spool: the ref is reported unknown, which is what the user asked about

    return FeedbackAPI(store, catch_up=catch_up)


__all__ = ["register"]

feedback_app = typer.Typer(help="Record and list explicit feedback (thumbs, ratings, corrections, comments).")


def _scale(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    try:
        return float(low), float(high)
    except ValueError:
        raise ValidationError(f"bad --scale {text!r}; use LOW-HIGH, e.g. 1-5") from None


@feedback_app.command("add")
def add_command(
    ctx: typer.Context,
    trace: str = typer.Argument(..., help="trace id or the provider's response id"),
    thumbs: str | None = typer.Option(None, "--thumbs", help="up or down"),
    rating: float | None = typer.Option(None, "--rating", help="a rating on --scale"),
    scale: str = typer.Option("1-5", "--scale", help="rating scale LOW-HIGH"),
    correction: str | None = typer.Option(None, "--correction", help="what the answer should have been"),
    comment: str | None = typer.Option(None, "--comment", help="free text"),
    user: str | None = typer.Option(None, "--user", help="who gave the feedback"),
    key: str | None = typer.Option(None, "--key", help="idempotency key: the same key twice stores one row"),
    as_json: bool = typer.Option(False, "--json", help="print the stored row as JSON"),
) -> None:
    """Record feedback on a trace.

    Examples:

      workbench feedback add 01a2083909d9e12219b0218a55 --thumbs down --user u-7

      workbench feedback add chatcmpl-abc --rating 4 --scale 1-5

      workbench feedback add 01a20839... --correction "The capital of Australia is Canberra."
    """
    given = [
        name
        for name, value in (
            ("--thumbs", thumbs),
            ("--rating", rating),
            ("--correction", correction),
            ("--comment", comment),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise ValidationError("give exactly one of --thumbs, --rating, --correction, --comment")
    api = _feedback_api(ctx)
    options: dict[str, Any] = {"user_id": user, "idempotency_key": key}
    if thumbs is not None:
        if thumbs not in ("up", "down"):
            raise ValidationError(f"--thumbs must be up or down, not {thumbs!r}")
        stored = api.thumbs(trace, up=thumbs == "up", **options)
    elif rating is not None:
        stored = api.rating(trace, rating, scale=_scale(scale), **options)
    elif correction is not None:
        stored = api.correction(trace, correction, **options)
    else:
        stored = api.comment(trace, comment or "", **options)
    if as_json:
        print_json(stored.model_dump(mode="json"))
    else:
        console.print(f"stored {stored.signal} feedback {stored.id} on trace {stored.trace_id}")


def _import_row(api: FeedbackAPI, row: Any) -> None:
    if not isinstance(row, dict):
        raise ValidationError("each line must be a JSON object")
    ref = row.get("trace_id") or row.get("ref") or row.get("response_id")
    if not ref:
        raise ValidationError("missing field 'trace_id'")
    options = {
        "user_id": row.get("user_id"),
        "idempotency_key": row.get("idempotency_key"),
        "metadata": row.get("metadata"),
    }
    kinds = [k for k in ("thumbs", "rating", "correction", "comment") if row.get(k) is not None]
    if len(kinds) != 1:
        raise ValidationError("each row needs exactly one of 'thumbs', 'rating', 'correction', 'comment'")
    kind = kinds[0]
    if kind == "thumbs":
        value = row["thumbs"]
        if value in ("up", True, 1):
            api.thumbs(ref, up=True, **options)
        elif value in ("down", False, 0):
            api.thumbs(ref, up=False, **options)
        else:
            raise ValidationError(f"field 'thumbs' must be up/down or true/false, not {value!r}")
    elif kind == "rating":
        api.rating(ref, row["rating"], scale=(1, 5) if row.get("scale") is None else row["scale"], **options)
    elif kind == "correction":
        api.correction(ref, row["correction"], **options)
    else:
        api.comment(ref, row["comment"], **options)


MAX_IMPORT_LINE_BYTES = 1 << 20


def _bounded_lines(handle: Any) -> Any:
    """The file's lines, never holding more than one line of at most MAX_IMPORT_LINE_BYTES in memory;
    a longer line is skipped to its end and yielded as None (reported with its number, never stored)."""
    while True:
        line = handle.readline(MAX_IMPORT_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_IMPORT_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield line


@feedback_app.command("import")
def import_command(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="JSONL file: one object per line"),
    as_json: bool = typer.Option(False, "--json", help="print counts and errors as JSON"),
) -> None:
    """Import feedback from a JSONL file; bad rows are reported with their line numbers, good rows kept.

    Each line: {"trace_id": "...", "thumbs": "up"} or "rating": 4 (with optional "scale": [1, 5]),
    "correction": "...", "comment": "..."; optional "user_id", "idempotency_key", "metadata".
    A line may be up to 1 MiB; the fields' limits are in `workbench.feedback.explicit`. Any bad row
    makes the exit code 2 (the good rows are stored all the same).

    Examples:

      workbench feedback import votes.jsonl

      workbench feedback import votes.jsonl --json
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from exc
    api = _feedback_api(ctx)
    imported, errors = 0, []
    with handle:
        for number, line in enumerate(_bounded_lines(handle), start=1):
            if line is None:
                errors.append({"line": number, "error": f"line longer than {MAX_IMPORT_LINE_BYTES:,} bytes"})
                continue
            if not line.strip():
                continue
            try:
                _import_row(api, orjson.loads(line))
                imported += 1
            except orjson.JSONDecodeError as exc:
                errors.append({"line": number, "error": f"not valid JSON: {exc}"})
            except (ValidationError, NotFoundError) as exc:
                errors.append({"line": number, "error": str(exc)})
    if as_json:
        print_json({"imported": imported, "errors": errors})
    else:
        console.print(f"imported {imported} feedback rows from {path}")
        for error in errors:
            err_console.print(f"{path}:{error['line']}: {error['error']}", highlight=False, markup=False)
    if errors:
        raise typer.Exit(2)


@feedback_app.command("list")
def list_command(
    ctx: typer.Context,
    trace: str | None = typer.Option(None, "--trace", help="only feedback on this trace"),
    signal: str | None = typer.Option(None, "--signal", help="thumbs, rating, correction, repeat_ask, ..."),
    kind: str | None = typer.Option(None, "--kind", help="explicit or implicit"),
    since: str | None = typer.Option(None, "--since", help="1h, 7d or an ISO date"),
    limit: int = typer.Option(100, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """List feedback, oldest first.

    Examples:

      workbench feedback list --signal thumbs --json

      workbench feedback list --kind implicit --since 1d
    """
    if kind not in (None, "explicit", "implicit"):
        raise ValidationError(f"--kind must be explicit or implicit, not {kind!r}")
    from ..store import feedback as feedback_rows

    store = get_store(ctx)
    with store.read() as conn:
        trace_ids = None
        if trace is not None:
            from ..store import traces as trace_rows

            trace_ids = [trace_rows.resolve_trace_id(conn, trace)]
        rows = feedback_rows.list_feedback(
            conn, trace_ids=trace_ids, signal=signal, kind=kind, since=parse_since(since), limit=limit
        )
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    if not rows:
        console.print("No feedback yet: [bold]wb.feedback.thumbs(trace_id, up=False)[/] or [bold]workbench mine[/].")
        return
    console.print(
        table(
            f"{len(rows)} feedback rows",
            ["id", "age", "trace", "kind", "signal", "value", "strength", "source", "text"],
            (
                (
                    r.id,
                    age(r.created_at),
                    r.trace_id,
                    r.kind,
                    r.signal,
                    r.value,
                    f"{r.strength:.2f}",
                    r.source,
                    (r.text or "")[:50],
                )
                for r in rows
            ),
        )
    )


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")
