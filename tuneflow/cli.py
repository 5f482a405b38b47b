"""`tuneflow` — one command for the model kit, workers, the gateway, local topology and each service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.data.cli import register as register_data
from services.inference.cli import register as register_inference
from shared.queue import Queue
from tuneflow.demo import demo_command
from tuneflow.dev import dev_app
from tuneflow.eval_cmd import eval_command
from tuneflow.export_cmd import export_command
from tuneflow.train_cmd import train_command

app = typer.Typer(help="TuneFlow: fine-tune, evaluate, export and serve LLMs.", no_args_is_help=True)
model_app = typer.Typer(help="Build and inspect models.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(model_app, name="model")
app.add_typer(db_app, name="db")
app.add_typer(dev_app, name="dev")
register_data(app)
register_inference(app)
app.command("export")(export_command)
app.command("eval")(eval_command)
app.command("train")(train_command)
app.command("demo")(demo_command)


@model_app.command("init-tiny")
def init_tiny(
    out: Annotated[Path, typer.Option(help="Folder to write the model to.")],
    arch: Annotated[str, typer.Option(help="llama or qwen2.")] = "qwen2",
    hidden_size: Annotated[int, typer.Option(help="Hidden size.")] = 64,
    layers: Annotated[int, typer.Option(help="Transformer layers.")] = 2,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = 4,
    kv_heads: Annotated[int, typer.Option(help="Key/value heads (GQA).")] = 2,
    intermediate_size: Annotated[int, typer.Option(help="MLP size; 0 = 2.75 x hidden.")] = 0,
    vocab_size: Annotated[int, typer.Option(help="Upper bound on the BPE vocabulary.")] = 2048,
    corpus: Annotated[list[Path] | None, typer.Option(help="Extra text files for the tokenizer.")] = None,
    seed: Annotated[int, typer.Option(help="Weight-init seed.")] = 0,
) -> None:
    """Build a random-init model with a locally trained byte-level BPE tokenizer and chat template."""
    from shared.modelkit import TinyModelSpec, build_tiny_model

    spec = TinyModelSpec(
        arch=arch,
        hidden_size=hidden_size,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        intermediate_size=intermediate_size,
        vocab_size=vocab_size,
        seed=seed,
        corpus=list(corpus or []),
    )
    try:
        path = build_tiny_model(spec, out)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"tiny {arch} model written to {path}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply database migrations to the configured database."""
    from shared.db import migrate
    from shared.settings import get_settings

    url = get_settings().resolved_database_url
    migrate(url, revision)
    typer.echo(f"database at {url.split('@')[-1]} is at {revision}")


@app.command()
def worker(
    service: Annotated[Queue, typer.Argument(help="Which service's queue to consume.")],
    concurrency: Annotated[int, typer.Option(help="Parallel tasks (training always runs one).")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker for one service's queue (the `events` queue is the gateway's recorder)."""
    from shared.queue import create_celery_app, set_celery_app
    from shared.settings import Mode, get_settings

    settings = get_settings()
    if settings.mode is Mode.EMBEDDED:
        raise typer.BadParameter("workers need TUNEFLOW_MODE=distributed and a broker")
    celery_app = create_celery_app(settings, [service, Queue.EVENTS] if service is not Queue.EVENTS else [service])
    set_celery_app(celery_app)
    pool = "solo" if concurrency == 1 else "prefork"
    celery_app.worker_main(
        [
            "worker",
            "-Q",
            service.value,
            "-n",
            f"{service.value}@%h",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            loglevel,
            "--without-gossip",
            "--without-mingle",
        ]
    )


@app.command()
def gateway(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Run the API gateway (migrates the database first)."""
    import uvicorn

    from shared.db import migrate
    from shared.settings import get_settings

    migrate(get_settings().resolved_database_url)
    uvicorn.run("services.gateway.app:app", host=host, port=port)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
