"""The ``smr`` command."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from smr import logs
from smr.config import Settings
from smr.migrations import upgrade
from smr.runtime import Runtime, build_runtime

app = typer.Typer(help="SMR, the Social Marketing Robot.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
playbooks_app = typer.Typer(help="Playbooks.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(playbooks_app, name="playbooks")

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]


def _logging(settings: Settings) -> None:
    """Text or JSON lines (``SMR_LOG_FORMAT``), secrets redacted and phones masked, on stderr."""
    logs.configure(settings.log_format, level=logging.INFO)


def _announce(runtime: Runtime, *, host: str, port: int) -> None:
    catalog = runtime.catalog
    database = runtime.engine.url.render_as_string(hide_password=True)
    typer.echo(f"SMR listening on http://{host}:{port}  (database: {database})")
    loaded = len(catalog.result.playbooks)
    errors = sum(e.severity == "error" for e in catalog.errors)
    warnings = len(catalog.errors) - errors
    typer.echo(
        f"playbooks: {loaded} loaded from {catalog.directory}, {errors} errors, {warnings} warnings"
    )
    for error in catalog.errors:
        typer.echo(f"  {error.format()}")
    typer.echo("channels: " + ", ".join(f"{c} → {a}" for c, a in runtime.describe_routes().items()))
    tokens = runtime.tokens
    if runtime.settings.admin_tokens or runtime.settings.ingest_tokens:
        typer.echo("tokens: configured through SMR_ADMIN_TOKENS / SMR_INGEST_TOKENS")
        return
    where = runtime.settings.data_dir / "tokens.json"
    typer.echo(f"tokens ({'generated now, ' if tokens.generated else ''}kept in {where}):")
    typer.echo(f"  admin:  {tokens.admin[0].get_secret_value()}")
    typer.echo(f"  ingest: {tokens.ingest[0].get_secret_value()}")


def _serve(*, host: str, port: int, with_ticker: bool) -> None:
    from smr.api.app import create_app

    settings = Settings()
    _logging(settings)
    upgrade(settings.effective_database_url)
    runtime = build_runtime(settings, generate_tokens=True)
    _announce(runtime, host=host, port=port)
    app = create_app(runtime, with_ticker=with_ticker)
    # log_config=None: uvicorn's loggers reach the handler configured above (format, redaction).
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None)


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """API, event processor and scheduler in one process (migrates the database first)."""
    _serve(host=host, port=port, with_ticker=True)


@app.command()
def api(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """API only: accepts events; run `smr worker` processes to process and send them."""
    _serve(host=host, port=port, with_ticker=False)


HealthPort = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=65535,
        help="Serve /healthz and /metrics on this port (default: SMR_WORKER_HEALTH_PORT).",
    ),
]


@app.command()
def worker(health_port: HealthPort = None) -> None:
    """Event processor and scheduler: processes accepted events, wakes runs, sends."""
    from smr.worker import health_app, work_until_signalled

    settings = Settings()
    _logging(settings)
    runtime = build_runtime(settings)
    port = health_port or settings.worker_health_port
    if port is None:
        asyncio.run(work_until_signalled(runtime))
        return
    host = settings.worker_health_host
    typer.echo(f"worker health on http://{host}:{port}/healthz, metrics on /metrics")
    app = health_app(runtime)
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None, access_log=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest migration."""
    settings = Settings()
    upgrade(settings.effective_database_url)
    typer.echo("database schema is up to date")


@app.command("import")
def import_contacts(
    file: Annotated[
        Path,
        typer.Argument(
            help="Customers, one a line: a .csv file with a header, or JSON Lines.",
            exists=True,
            dir_okay=False,
        ),
    ],
    chunk: Annotated[int, typer.Option(min=1, max=20_000, help="Lines per transaction.")] = 2000,
    jobs: Annotated[
        int, typer.Option(min=1, max=64, help="Processes importing at once (PostgreSQL).")
    ] = 1,
) -> None:
    """Import customers and their order history; starts no playbook, messages nobody. Run it
    again and nothing changes. Exit 1 when a line was refused (the others go in)."""
    from smr.import_command import run

    settings = Settings()
    _logging(settings)
    upgrade(settings.effective_database_url)
    raise typer.Exit(asyncio.run(run(settings, file, chunk=chunk, jobs=jobs)))


@app.command("report")
def report(
    playbook: Annotated[
        str | None, typer.Argument(help="A playbook's id; every loaded playbook when left out.")
    ] = None,
    since: Annotated[
        str, typer.Option(help="2026-11-01, or 30d (days back, today included).")
    ] = "30d",
    until: Annotated[str | None, typer.Option(help="2026-11-30; today when left out.")] = None,
) -> None:
    """Each playbook's funnel over local days: runs started, refused, completed, exited; each
    send step's messages sent, skipped (by reason), failed. Exit 2 on a bad range."""
    from smr.errors import InvalidInput
    from smr.report_command import run

    settings = Settings()
    _logging(settings)
    upgrade(settings.effective_database_url)
    try:
        typer.echo(asyncio.run(run(settings, playbook, since=since, until=until)))
    except InvalidInput as exc:
        for error in exc.errors:
            typer.echo(f"{error['path'].removeprefix('query.')}: {error['message']}", err=True)
        raise typer.Exit(2) from None


@playbooks_app.command("check")
def playbooks_check(
    path: Annotated[Path | None, typer.Argument(help="Playbooks folder, or one file.")] = None,
) -> None:
    """Validate every playbook; print `file:line:col: message` per problem; exit 1 on errors."""
    from adapters import PLAYBOOK_CHANNELS
    from smr import segments
    from smr.channel_codes import check_path
    from smr.playbooks import LoadResult, load_path

    configured = Settings().playbooks_dir
    target = path or configured
    codes = check_path(target)  # channel codes: a folder's, or one code file
    defined = segments.check_path(target)  # segments: a folder's, or one segment file
    result = LoadResult()
    if target.is_dir() or (codes is None and defined is None):
        result = load_path(target, channels=PLAYBOOK_CHANNELS, policies_dir=configured)
    errors = [*result.errors, *(codes.errors if codes else []), *(defined[1] if defined else [])]
    for error in errors:
        typer.echo(error.format(), err=True)
    failed = [e for e in errors if e.severity == "error"]
    typer.echo(f"{len(result.playbooks)} playbooks valid, {len(failed)} errors")
    if codes is not None:
        typer.echo(f"{codes.codes} channel codes valid")
    if defined is not None:
        typer.echo(f"{defined[0]} segments valid")
    raise typer.Exit(1 if failed else 0)


@playbooks_app.command("test")
def playbooks_test(
    path: Annotated[
        Path | None,
        typer.Argument(help="Playbooks folder (its tests/ are run), or one test file."),
    ] = None,
) -> None:
    """Run the playbook tests on the simulator; print `file:line: case: expected … got …` per
    failure; exit 1 when one fails or the playbooks do not load."""
    from adapters import PLAYBOOK_CHANNELS
    from smr.playbook_tests.command import run

    raise typer.Exit(asyncio.run(run(path, settings=Settings(), channels=PLAYBOOK_CHANNELS)))


@playbooks_app.command("schema")
def playbooks_schema(
    policies: Annotated[
        bool, typer.Option("--policies", help="The schema of policies.yaml.")
    ] = False,
) -> None:
    """Print the JSON Schema of playbook files, for editors (playbooks/schema.json)."""
    from adapters import PLAYBOOK_CHANNELS
    from smr.playbooks.jsonschema import playbook_schema, policies_schema, render

    schema = policies_schema() if policies else playbook_schema(PLAYBOOK_CHANNELS)
    typer.echo(render(schema), nl=False)


@app.command()
def simulate(
    file: Annotated[Path, typer.Argument(help="A playbook file, or a folder of playbooks.")],
    event: Annotated[str, typer.Option(help="The first event: a JSON file, or JSON text.")],
    events: Annotated[
        Path | None, typer.Option(help="Later events, one JSON object a line (JSONL).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days to look ahead.")] = 60,
) -> None:
    """Show what playbooks would do for one contact, in virtual time; nothing is stored or sent."""
    from adapters import PLAYBOOK_CHANNELS
    from smr.simulate.command import run

    settings = Settings()
    code = run(
        file, event=event, events=events, days=days, settings=settings, channels=PLAYBOOK_CHANNELS
    )
    raise typer.Exit(code)
