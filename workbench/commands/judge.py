"""Judge commands: list rubrics, run a judge over the store, calibrate judge scores against users."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import ConfigError, ValidationError
from ._common import console, err_console, get_store, print_json, table

if TYPE_CHECKING:
    from ..judge.runner import JudgeRun

# Rubrics (yaml), the runner (openai) and calibration (scipy, sklearn) are imported inside the commands
# that use them: every ``workbench`` invocation imports this module, and they would add ~1.5 s to each.

__all__ = ["register"]

judge_app = typer.Typer(
    help="Run LLM judges over captured traces and calibrate them against user ratings.", no_args_is_help=True
)
DEFAULT_MODEL = "gpt-4o-mini"


def _dirs(rubric_dir: Path | None) -> list[Path] | None:
    return [rubric_dir] if rubric_dir is not None else None


def rubrics_command(
    rubric_dir: Path | None = typer.Option(None, "--rubric-dir", help="read rubrics from this directory only"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """List the judge rubrics (./rubrics first, then the ones shipped with workbench).

    Examples:

      workbench rubrics

      workbench rubrics --json
    """
    from ..judge.rubrics import load_rubrics

    found = load_rubrics(_dirs(rubric_dir))
    if as_json:
        print_json(
            [{**r.model_dump(mode="json"), "mode": r.mode, "fingerprint": r.fingerprint} for r in found.values()]
        )
        return
    if not found:
        console.print("No rubrics found: add [bold]rubrics/NAME.yaml[/] (see the shipped ones for the format).")
        return
    console.print(
        table(
            f"{len(found)} rubrics",
            ["id", "version", "scale", "mode", "fingerprint", "description"],
            ((r.id, r.version, _scale(r.scale), r.mode, r.fingerprint, _short(r.description)) for r in found.values()),
        )
    )


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _scale(scale: Any) -> str:
    if scale.kind == "likert":
        return f"likert {scale.min}-{scale.max}"
    return "pairwise (tie allowed)" if scale.kind == "pairwise" and scale.allow_tie else scale.kind


def _api_key(var: str, base_url: str | None) -> str:
    key = os.environ.get(var)
    if key:
        return key
    if base_url or os.environ.get("OPENAI_BASE_URL"):
        return "unused"  # local OpenAI-compatible servers (vLLM, Ollama, ...) accept any key
    raise ConfigError(
        f"no API key: set {var} (or name another variable with --api-key-env), "
        "or point --base-url at a local OpenAI-compatible server"
    )


@judge_app.command("run")
def run_command(
    ctx: typer.Context,
    rubric_id: str = typer.Option(..., "--rubric", help="rubric id (see `workbench rubrics`)"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", envvar="WORKBENCH_JUDGE_MODEL", help="judge model"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (default: OpenAI)"),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="environment variable with the key"),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="judge calls in flight at once"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="judge at most this many traces (or pairs)"),
    prompt: str | None = typer.Option(None, "--prompt", help="only traces of NAME or NAME@VERSION"),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, help="seconds per request"),
    max_retries: int = typer.Option(5, "--max-retries", min=0, help="retries on 429/5xx/timeouts"),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="judge sampling temperature"),
    prices: Path | None = typer.Option(None, "--prices", help='JSON {"model": {"input": $/1M, "output": $/1M}}'),
    rubric_dir: Path | None = typer.Option(None, "--rubric-dir", help="read rubrics from this directory only"),
    as_json: bool = typer.Option(False, "--json", help="print the run summary and every verdict as JSON"),
) -> None:
    """Judge traces that have no score yet under this rubric version and judge model.

    Verdicts are stored (a rerun is served from the cache and makes no API call); answers the rubric
    cannot parse are stored as "unparsed" with the reason, never as a made-up score. Pairwise rubrics
    compare traces with the same input, asked in both orders.

    Examples:

      workbench judge run --rubric helpfulness --model gpt-4o-mini --limit 200

      workbench judge run --rubric helpfulness --prompt support-answer@2 --concurrency 16

      workbench judge run --rubric pairwise_preference --base-url http://localhost:8000/v1 --model qwen2.5-7b
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..judge.prices import load_prices
    from ..judge.rubrics import get_rubric
    from ..judge.runner import JudgeConfig, RetryPolicy
    from ..judge.service import run_judge

    rubric = get_rubric(rubric_id, _dirs(rubric_dir))
    config = JudgeConfig(
        model=model,
        base_url=base_url,
        api_key=_api_key(api_key_env, base_url),
        concurrency=concurrency,
        timeout=timeout,
        temperature=temperature,
        retry=RetryPolicy(max_retries=max_retries),
        prices=load_prices(prices) if prices is not None else None,
    )
    store = get_store(ctx)
    with Progress(
        TextColumn(f"judging ({rubric.id})"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=as_json,
        transient=True,
    ) as bar:
        task = bar.add_task("judge", total=None)
        run = run_judge(
            store,
            rubric,
            config,
            prompt=prompt,
            limit=limit,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(run.to_dict())
    else:
        _print_run(run)
    if run.stats.errors:
        err_console.print(
            f"[red]error:[/] {run.stats.errors} judge calls failed (stored with parse_status "
            "'error'); run again to retry them",
            highlight=False,
        )
        raise typer.Exit(1)


def _print_run(run: JudgeRun) -> None:
    s = run.stats
    if not s.calls:
        console.print(
            f"Nothing to judge: no trace (or pair) matches, or each already has a {run.rubric_id} "
            f"v{run.rubric_version} score from {run.model}."
        )
        return
    cost = "unknown (no price for this model)" if s.cost is None else f"${s.cost:.4f}"
    if s.cost is not None and s.unpriced_calls:
        cost += f" (+{s.unpriced_calls} calls without a price)"
    rows = [
        ("judge calls", s.calls),
        ("served from cache", s.cache_hits),
        ("HTTP requests", s.requests),
        ("retries", s.retries),
        ("ok", s.ok),
        ("unparsed", s.unparsed),
        ("failed", s.errors),
        ("prompt tokens", s.prompt_tokens),
        ("completion tokens", s.completion_tokens),
        ("cost", cost),
        ("elapsed", f"{s.elapsed_s:.1f}s"),
    ]
    if s.failures:
        rows.append(("failures seen", ", ".join(f"{k}: {v}" for k, v in sorted(s.failures.items()))))
    bias = run.position_bias
    if bias is not None:
        share = "n/a" if bias.first_position_share is None else f"{bias.first_position_share:.3f}"
        consistency = "n/a" if bias.consistency is None else f"{bias.consistency:.3f}"
        p_value = "n/a" if bias.p_value is None else f"{bias.p_value:.3g}"
        rows += [
            ("pairs judged both ways", bias.pairs),
            ("order consistency", consistency),
            ("first-position share", f"{share} (0.5 = no position bias; p = {p_value})"),
        ]
    console.print(table(f"judge {run.rubric_id} v{run.rubric_version} with {run.model}", ["", "value"], rows))
    unparsed = [r for r in run.results if r.score.parse_status == "unparsed"][:5]
    for result in unparsed:
        console.print(f"unparsed: trace {result.score.trace_id}: {result.score.parse_error}", highlight=False)


@judge_app.command("calibrate")
def calibrate_command(
    ctx: typer.Context,
    rubric_id: str | None = typer.Option(None, "--rubric", help="calibrate this rubric's stored scores"),
    by: str | None = typer.Option(None, "--by", help="per group: prompt_version, model_version or variant"),
    model: str | None = typer.Option(None, "--model", help="judge model (needed when several judged)"),
    source: Path | None = typer.Option(None, "--from", help="calibrate a JSONL file instead of the store"),
    judge_field: str | None = typer.Option(None, "--judge-field", help="dotted path of the judge score"),
    human_field: str | None = typer.Option(None, "--human-field", help="dotted path of the human rating"),
    group_field: str | None = typer.Option(None, "--group-field", help="dotted path of a group key"),
    unlabeled: Path | None = typer.Option(None, "--unlabeled", help="JSONL of judge scores nobody rated (PPI)"),
    pairwise: bool = typer.Option(False, "--pairwise", help="fields hold preferences (1/2 or a/b)"),
    swapped_field: str | None = typer.Option(
        None,
        "--swapped-field",
        help="pairwise: verdict with outputs swapped, in the original numbering (position bias)",
    ),
    texts: str | None = typer.Option(
        None, "--texts", help="pairwise: FIELD_A,FIELD_B of the two outputs (length bias)"
    ),
    bootstrap: int | None = typer.Option(
        None, "--bootstrap", min=0, help="bootstrap resamples for CIs [default: 2000]"
    ),
    seed: int = typer.Option(0, "--seed", help="random seed (bootstrap, cross-validation folds)"),
    rubric_dir: Path | None = typer.Option(None, "--rubric-dir", help="read rubrics from this directory only"),
    as_json: bool = typer.Option(False, "--json", help="print the full report as JSON"),
) -> None:
    """How far to trust a judge: agreement with users, a mapping onto their scale, PPI estimates.

    From the store, the rubric's scores are joined with user ratings (thumbs for binary rubrics) and
    the result is stored as calibration rows. From a file, each line holds a judge score and a human
    rating (dotted paths into the JSON).

    Examples:

      workbench judge calibrate --rubric helpfulness --by prompt_version

      workbench judge calibrate --from data.jsonl --judge-field predict_scores.overall --human-field scores.overall

      workbench judge calibrate --from pairs.jsonl --judge-field gpt4_pref --human-field label --pairwise --json
    """
    from ..judge.calibration import DEFAULT_BOOTSTRAP
    from ..judge.rubrics import get_rubric
    from ..judge.service import GROUP_BY, calibrate_file, calibrate_store

    bootstrap = DEFAULT_BOOTSTRAP if bootstrap is None else bootstrap
    if (rubric_id is None) == (source is None):
        raise ValidationError("give either --rubric ID (scores in the store) or --from FILE.jsonl")
    if source is not None:
        if by is not None or model is not None:
            raise ValidationError("--by and --model apply to --rubric; with --from use --group-field")
        if not judge_field or not human_field:
            raise ValidationError("--from needs --judge-field and --human-field")
        pair = None
        if texts is not None:
            parts = [p.strip() for p in texts.split(",")]
            if len(parts) != 2 or not all(parts):
                raise ValidationError(f"--texts must be FIELD_A,FIELD_B, not {texts!r}")
            pair = (parts[0], parts[1])
        report = calibrate_file(
            source,
            judge_field=judge_field,
            human_field=human_field,
            group_field=group_field,
            unlabeled=unlabeled,
            pairwise=pairwise,
            swapped_field=swapped_field,
            text_fields=pair,
            n_bootstrap=bootstrap,
            seed=seed,
        )
        title = f"calibration of {judge_field} against {human_field} ({source})"
    else:
        extra = [
            name
            for name, value in (
                ("--judge-field", judge_field),
                ("--human-field", human_field),
                ("--group-field", group_field),
                ("--unlabeled", unlabeled),
                ("--swapped-field", swapped_field),
                ("--texts", texts),
            )
            if value
        ]
        if extra or pairwise:
            raise ValidationError(f"{', '.join(extra) or '--pairwise'} only apply to --from FILE")
        if by is not None and by not in GROUP_BY:
            raise ValidationError(f"--by must be one of {', '.join(GROUP_BY)}, not {by!r}")
        rubric = get_rubric(rubric_id or "", _dirs(rubric_dir))
        result = calibrate_store(get_store(ctx), rubric, by=by, judge_model=model, n_bootstrap=bootstrap, seed=seed)
        report = {**result.report, "calibration_ids": [row.id for row in result.calibrations]}
        title = (
            f"calibration of {rubric.id} v{rubric.version} ({report['judge_model']}) against user {report['signal']}s"
        )
    if as_json:
        print_json(report)
        return
    _print_report(report, title)


def _interval(value: Any) -> str:
    if not isinstance(value, dict) or value.get("estimate") is None:
        return "n/a"
    low, high = value.get("ci_low"), value.get("ci_high")
    ci = f"  [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{value['estimate']:.3f}{ci}"


def _metric_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("n (labelled)", str(report["n"])),
        ("n unlabelled", str(report.get("n_unlabeled", 0))),
        ("scale", str(report.get("scale"))),
    ]
    if report.get("scale") == "pairwise":
        rows.append(("agreement", _interval(report.get("agreement"))))
    for key in ("pearson", "spearman", "kendall", "kappa", "krippendorff_alpha"):
        rows.append((key, _interval(report.get(key))))
    for key in ("accuracy", "precision", "recall", "f1"):
        if report.get("binary"):
            rows.append((key, _interval(report["binary"][key])))
    bias = report.get("position_bias")
    if bias:
        rows += [
            ("order consistency", _interval(bias["consistency"])),
            ("first-position share", _interval(bias["first_position_share"])),
        ]
    length = report.get("length_bias")
    if length and length.get("n"):
        rows.append(("judge minus human prefers longer", _interval(length["difference"])))
    mapping = report.get("mapping")
    if mapping:
        err = mapping["cv_error"]
        rows.append(
            (
                f"{mapping['metric']} before / after mapping",
                " / ".join("n/a" if err[k] is None else f"{err[k]:.3f}" for k in ("before", "after")),
            )
        )
        if mapping.get("threshold"):
            rows.append(("recommended threshold", f"judge >= {mapping['threshold']['value']:.3g}"))
    rows.append((f"classical ({report.get('estimand')})", _interval(report.get("classical"))))
    if report.get("ppi"):
        rows.append(("PPI++", _interval(report["ppi"])))
        gain = (report.get("effective_sample_size") or {}).get("gain")
        if gain is not None:
            rows.append(("effective sample size gain", f"{gain:.2f}x"))
    return rows


def _print_report(report: dict[str, Any], title: str) -> None:
    console.print(table(title, ["statistic", "estimate  [95% CI]"], _metric_rows(report)))
    groups = report.get("groups") or []
    if groups:
        console.print(
            table(
                f"by {report.get('by') or 'group'}",
                ["group", "n", "unlabelled", "pearson", "kappa", "classical", "PPI++", "warning"],
                (
                    (
                        g["group"],
                        g["n"],
                        g["n_unlabeled"],
                        _interval(g.get("pearson")),
                        _interval(g.get("kappa")),
                        _interval(g.get("classical")),
                        _interval(g.get("ppi")),
                        g.get("warning") or "",
                    )
                    for g in groups
                ),
            )
        )
    for note in report.get("notes") or []:
        console.print(f"note: {note}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("rubrics")(rubrics_command)
    app.add_typer(judge_app, name="judge")
