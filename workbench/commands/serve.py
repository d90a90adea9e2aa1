"""`workbench serve` (OTLP traces + feedback API) and `workbench keys` (project keys for it)."""

from __future__ import annotations

import typer

from ..errors import ValidationError
from ._common import CliState, console, err_console, get_store, print_json, require_project_store, table

__all__ = ["register"]

keys_app = typer.Typer(
    help="Project keys for `workbench serve` (stored hashed; the secret is shown once).\n\n"
    "Examples:\n\n  workbench keys create --name backend --scope ingest,feedback\n\n"
    "  workbench keys list --json\n\n  workbench keys revoke backend",
    no_args_is_help=True,
)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="what the key is for (shown in listings)"),
    scope: str = typer.Option("ingest,feedback", "--scope", help="comma-separated: ingest (OTLP), feedback"),
    as_json: bool = typer.Option(False, "--json", help="print the key as JSON"),
) -> None:
    """Create a key and print its secret once (only a hash is stored).

    Examples:

      workbench keys create --name backend --scope ingest,feedback

      workbench keys create --name collector --scope ingest --json
    """
    from ..store import keys as key_rows

    with get_store(ctx).write() as conn:
        key, secret = key_rows.create_key(conn, name, scope.split(","))
    if as_json:
        print_json({**key.to_dict(), "secret": secret})
        return
    console.print(f"created key [bold]{key.name}[/] ({key.id}) with scopes {', '.join(key.scopes)}", highlight=False)
    console.print("secret (shown once, store it now):", highlight=False)
    print(secret)


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """List keys (never their secrets), revoked ones included.

    Examples:

      workbench keys list

      workbench keys list --json
    """
    from ..store import keys as key_rows

    with get_store(ctx).read() as conn:
        found = key_rows.list_keys(conn)
    if as_json:
        print_json([k.to_dict() for k in found])
        return
    if not found:
        console.print("No keys. Create one with [bold]workbench keys create --name NAME[/].")
        return
    console.print(
        table(
            f"{len(found)} keys",
            ["id", "name", "prefix", "scopes", "created", "revoked"],
            (
                [
                    k.id,
                    k.name,
                    k.prefix + "…",
                    ",".join(k.scopes),
                    k.created_at.isoformat(timespec="seconds"),
                    k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
                ]
                for k in found
            ),
        )
    )


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="key id, name, or the secret itself"),
    as_json: bool = typer.Option(False, "--json", help="print the revoked key as JSON"),
) -> None:
    """Revoke a key: serve refuses it (403) within a second.

    Examples:

      workbench keys revoke backend

      workbench keys revoke 0190f3c2a1b4d5e6f7a8b9c0d1
    """
    from ..store import keys as key_rows

    with get_store(ctx).write() as conn:
        revoked = key_rows.revoke_key(conn, key)
    if as_json:
        print_json(revoked.to_dict())
        return
    console.print(f"revoked key {revoked.name} ({revoked.id})", highlight=False)


def serve_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(4318, "--port", min=0, max=65535, help="port (4318 is OTLP/HTTP's)"),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="serve processes (each spools on its own)"),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="origin allowed to call the feedback API from a browser (repeat; none by default)"
    ),
    rate_limit: float = typer.Option(
        100.0, "--rate-limit", min=0, help="feedback API requests/s per key or token (0: none)"
    ),
    ingest_rate_limit: float = typer.Option(
        0.0, "--ingest-rate-limit", min=0, help="OTLP requests/s per key (0: none)"
    ),
    max_body_mb: float = typer.Option(16.0, "--max-body-mb", min=0.001, help="largest OTLP request, decompressed"),
    spool: str | None = typer.Option(None, "--spool", help="spool directory (default: the store's)"),
    ingest: str = typer.Option(
        "process",
        "--ingest",
        help="process: a follower process moves the spool into the store (default); thread: inside each serve "
        "process; off: leave it to `workbench ingest`",
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level"),
) -> None:
    """Receive OTLP/HTTP traces from any language and feedback from browsers, into this store.

    POST /v1/traces (OTLP protobuf or JSON, gzip or not; key scope ingest), POST /api/feedback and
    /api/feedback/batch (key scope feedback, or a feedback token), POST /api/feedback-tokens,
    GET /healthz, GET /openapi.json. Spans are spooled before the response, like wrapped calls.

    Examples:

      workbench keys create --name backend --scope ingest,feedback

      workbench serve --port 4318 --cors-origin https://app.example.com

      OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer wb_sk_..."
    """
    import os

    import uvicorn

    from ..serve.app import CONFIG_ENV, ServeConfig
    from ..store.locate import locate

    root = ctx.find_root().obj
    store_url = root.store_url if isinstance(root, CliState) else None
    if ingest not in ("process", "thread", "off"):
        raise ValidationError(f"--ingest must be process, thread or off, not {ingest!r}")
    require_project_store(store_url)
    from ..store import keys as key_rows

    with get_store(ctx).read() as conn:  # exit 4 / 5 here, before binding the port, when the store is missing or down
        active = key_rows.list_keys(conn, include_revoked=False)
    if not active:
        err_console.print(
            "[yellow]note:[/] no active keys yet: OTLP exporters and back ends get 401 (feedback tokens still work); "
            "create one with "
            "[bold]workbench keys create --name NAME --scope ingest,feedback[/]",
            highlight=False,
            soft_wrap=True,
        )
    config = ServeConfig(
        store_url=locate(store_url).url,
        spool=spool,
        cors_origins=list(cors_origin),
        rate_limit=rate_limit,
        ingest_rate_limit=ingest_rate_limit,
        max_otlp_bytes=int(max_body_mb * (1 << 20)),
        ingest=ingest,
    )
    os.environ[CONFIG_ENV] = config.to_env()
    console.print(
        f"workbench serve on http://{host}:{port} ({workers} process{'es' if workers > 1 else ''})", highlight=False
    )
    uvicorn.run(
        "workbench.serve.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        lifespan="on",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command("serve")(serve_command)
