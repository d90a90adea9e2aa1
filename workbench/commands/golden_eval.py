"""``workbench eval``: run a prompt version over a golden set and compare with the previous run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import ConfigError
from ._common import CliState, console, err_console, get_store, print_json, table
from .golden import ROOT_HELP, golden_root

if TYPE_CHECKING:
    from ..golden.evals import EvalRun

__all__ = ["register"]


def _api_key(var: str, base_url: str | None) -> str:
    key = os.environ.get(var)
    if key:
        return key
    if base_url or os.environ.get("OPENAI_BASE_URL"):
        return "unused"  # local OpenAI-compatible servers accept any key
    raise ConfigError(
        f"no API key: set {var} (or name another variable with --api-key-env), "
        "or point --base-url at a local OpenAI-compatible server"
    )


def _mean(summary: dict[str, Any]) -> str:
    if summary.get("mean") is None:
        return "n/a"
    ci = ""
    if summary.get("ci_low") is not None:
        ci = f"  [{summary['ci_low']:.3f}, {summary['ci_high']:.3f}]"
    return f"{summary['mean']:.3f}{ci}"


def _print_run(run: EvalRun, previous_summary: dict[str, Any] | None) -> None:
    counts = {status: sum(i.status == status for i in run.items) for status in ("ok", "skipped", "error")}
    rows: list[tuple[str, Any]] = [
        ("run", run.id),
        ("golden set", f"{run.golden_set}@v{run.version}"),
        ("prompt", run.prompt),
        ("model", run.model),
        ("judge", f"{run.rubric_id}@{run.rubric_version} by {run.judge_model}"),
        ("answered / skipped / failed", f"{counts['ok']} / {counts['skipped']} / {counts['error']}"),
        ("scored", run.summary["n"]),
        ("mean score [95% CI]", _mean(run.summary)),
    ]
    c = run.comparison
    if c is not None:
        diff = "n/a" if c.mean_difference is None else f"{c.mean_difference:+.3f}"
        if c.ci_low is not None:
            diff += f"  [{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
        rows += [
            ("previous run", f"{c.previous_run} ({c.previous_prompt}, {c.previous_model})"),
            ("previous mean [95% CI]", _mean(previous_summary or {})),
            ("items in both", c.n),
            ("wins / losses / ties", f"{c.wins} / {c.losses} / {c.ties}"),
            ("mean difference [95% CI]", diff),
            ("sign test p", "n/a" if c.sign_test_p is None else f"{c.sign_test_p:.3g}"),
        ]
    else:
        rows.append(("previous run", "none with this rubric and judge"))
    console.print(table(f"eval of {run.prompt} on {run.golden_set}@v{run.version}", ["", "value"], rows))
    if c is not None:
        moved = sorted(
            (i for i in c.items if i["after"] != i["before"]),
            key=lambda i: (-abs(i["after"] - i["before"]), i["item_id"]),
        )[:10]
        if moved:
            console.print(
                table(
                    "largest changes per item",
                    ["item", "before", "after"],
                    ((i["item_id"], i["before"], i["after"]) for i in moved),
                )
            )
    for item in [i for i in run.items if i.reason][:10]:
        err_console.print(f"{item.status} {item.item_id}: {item.reason}", highlight=False)
    console.print(f"saved {run.path}", highlight=False)


def eval_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="golden set NAME or NAME@vN"),
    prompt: str = typer.Option(..., "--prompt", help="prompt NAME@VERSION to run (NAME: the promoted version)"),
    rubric_id: str = typer.Option(..., "--rubric", help="pointwise rubric id (see `workbench rubrics`)"),
    model: str | None = typer.Option(None, "--model", help="model to run (default: the set's most common model)"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for the model"),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="environment variable with the key"),
    judge_model: str = typer.Option("gpt-4o-mini", "--judge-model", envvar="WORKBENCH_JUDGE_MODEL", help="judge model"),
    judge_base_url: str | None = typer.Option(None, "--judge-base-url", help="judge endpoint (default: --base-url)"),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, help="sampling temperature"),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, help="answer length limit"),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="model and judge calls in flight at once"),
    rubric_dir: Path | None = typer.Option(None, "--rubric-dir", help="read rubrics from this directory only"),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the run and its comparison as JSON"),
) -> None:
    """Run a prompt over a golden set through the wrapped client, judge the answers, compare runs.

    The answers are captured as traces (tagged "eval"), the judge's scores are stored, and the run is
    saved under golden_sets/NAME/evals/. It is compared with the previous run under the same rubric
    and judge: mean score with a 95% t interval, and wins/losses per item.

    Examples:

      workbench eval support --prompt support-answer@3 --rubric helpfulness

      workbench eval support@v2 --prompt support-answer@4 --rubric helpfulness --model gpt-4o-mini --json
    """
    from openai import AsyncOpenAI

    import workbench

    from ..golden.evals import load_runs, run_eval  # scipy and the judge: only load them for this command
    from ..judge import get_rubric
    from ..judge.runner import JudgeConfig

    rubric = get_rubric(rubric_id, [rubric_dir] if rubric_dir is not None else None)
    judge_url = judge_base_url or base_url
    judge = JudgeConfig(
        model=judge_model, base_url=judge_url, api_key=_api_key(api_key_env, judge_url), concurrency=concurrency
    )
    key = _api_key(api_key_env, base_url)
    params = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}
    store = get_store(ctx)
    state = ctx.find_root().obj
    wb = workbench.open(state.store_url if isinstance(state, CliState) else None, background_ingest=False)
    try:
        run = run_eval(
            store,
            golden_root(ctx, root),
            ref,
            prompt_ref=prompt,
            rubric=rubric,
            make_client=lambda: wb.wrap(AsyncOpenAI(base_url=base_url, api_key=key, max_retries=2)),
            judge=judge,
            model=model,
            params=params,
            flush=wb.flush,
            concurrency=concurrency,
        )
    finally:
        wb.close()
    previous = None
    if run.comparison is not None:
        previous = next(
            (
                r.summary
                for r in load_runs(golden_root(ctx, root), run.golden_set)
                if r.id == run.comparison.previous_run
            ),
            None,
        )
    if as_json:
        print_json({**run.to_dict(), "previous_summary": previous})
    else:
        _print_run(run, previous)
    failed = [i for i in run.items if i.status == "error" or i.parse_status == "error"]
    if failed:
        err_console.print(
            f"[red]error:[/] {len(failed)} item(s) failed (model or judge call); the run is saved, run again to retry",
            highlight=False,
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
