"""`tuneflow dev up | down | status`: the whole platform as local processes, without Docker."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from ._dev_state import DevState, clear_state, load_state, state_path

dev_app = typer.Typer(help="Run the platform as local processes (no Docker): up, down, status.", no_args_is_help=True)

HomeOption = Annotated[
    Path | None, typer.Option(help="State folder (default: TUNEFLOW_HOME); logs go to <home>/dev/logs.")
]


@dev_app.command()
def up(
    ctx: typer.Context,
    home: HomeOption = None,
    model: Annotated[
        str | None, typer.Option(help="Model for the inference server: a path, hub id or object key (skipped without).")
    ] = None,
    gateway_port: Annotated[int, typer.Option(help="Gateway port.")] = 8000,
    inference_port: Annotated[int, typer.Option(help="Inference server port.")] = 8001,
    s3_endpoint: Annotated[
        str, typer.Option(help="host:port of an S3/MinIO to use; empty starts a local S3 server (moto).")
    ] = "",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every process to become healthy.")] = 90.0,
) -> None:
    """Start S3 and Redis if needed, the gateway, the events consumer, every worker and the inference server."""
    from ._dev_topology import TopologyError, TopologyOptions, dead_processes, start_topology, stop_topology

    home = _resolve_home(home)
    state = load_state(home)
    if state is not None:
        dead = dead_processes(state)
        if not dead:
            typer.echo(f"already up (state in {state_path(home)})")
            _print_table(state)
            return
        typer.echo(f"stale state: {', '.join(r.spec.name for r in dead)} not running; stopping the rest first")
        stop_topology(state)
        clear_state(home)
    serve_available = "serve" in getattr(ctx.find_root().command, "commands", {})
    if model is not None and not serve_available:
        typer.echo("note: this build has no `tuneflow serve`, so the inference server is not started")
    opts = TopologyOptions(
        home=home,
        gateway_port=gateway_port,
        inference_port=inference_port,
        model=model,
        serve_available=serve_available,
        s3_endpoint=s3_endpoint,
        timeout_s=timeout,
    )
    try:
        state = start_topology(opts, typer.echo)
    except TopologyError as exc:
        typer.echo(f"dev up failed; everything it started is stopped.\n\n{exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("TuneFlow is up:")
    _print_table(state)
    typer.echo("\nTo talk to it from a shell:")
    typer.echo("\n".join(f"export {name}={shlex.quote(value)}" for name, value in state.env.items()))


@dev_app.command()
def down(home: HomeOption = None) -> None:
    """Stop everything `dev up` started (SIGTERM, then SIGKILL after a grace period)."""
    from ._dev_topology import stop_topology

    home = _resolve_home(home)
    state = load_state(home)
    if state is None:
        typer.echo("nothing to stop")
        return
    stop_topology(state)
    clear_state(home)
    typer.echo(f"stopped {len(state.processes)} processes")


@dev_app.command()
def status(home: HomeOption = None) -> None:
    """Show what runs; exits 1 when nothing runs or a process has died."""
    from ._dev_topology import dead_processes

    home = _resolve_home(home)
    state = load_state(home)
    if state is None:
        typer.echo("not running")
        raise typer.Exit(1)
    _print_table(state)
    dead = dead_processes(state)
    if dead:
        typer.echo(f"\n{len(dead)} dead: `tuneflow dev up` restarts the topology, logs show why they stopped")
        raise typer.Exit(1)


def _resolve_home(home: Path | None) -> Path:
    if home is None:
        from shared.settings import get_settings

        home = get_settings().home
    return home.expanduser().resolve()


def _print_table(state: DevState) -> None:
    from ._dev_procs import is_alive

    rows = [("NAME", "PID", "STATE", "WHERE", "LOG")]
    for r in state.processes:
        where = r.spec.url or f"node {r.spec.node}"
        rows.append((r.spec.name, str(r.pid), "running" if is_alive(r) else "dead", where, r.log))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
