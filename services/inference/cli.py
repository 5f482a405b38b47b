"""`tuneflow serve`: run the inference server."""

from __future__ import annotations

from typing import Annotated

import typer

from .config import ServeConfig

_DEFAULTS = ServeConfig(model="-")


def _help(field: str) -> str:
    return ServeConfig.model_fields[field].description or ""


def _parse_adapters(specs: list[str]) -> dict[str, str]:
    adapters = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"expected NAME=PATH, got {spec!r}", param_hint="--adapter")
        adapters[name] = path
    return adapters


def serve(
    model: Annotated[str, typer.Option(help=_help("model"))],
    adapter: Annotated[list[str] | None, typer.Option(help="A local LoRA adapter as NAME=PATH (repeatable).")] = None,
    api_key: Annotated[str | None, typer.Option(help=_help("api_key"), envvar="TUNEFLOW_INFERENCE_API_KEY")] = None,
    platform: Annotated[bool, typer.Option(help=_help("platform"))] = False,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8001,
    served_model_name: Annotated[str, typer.Option(help=_help("served_model_name"))] = "",
    max_batch_size: Annotated[int, typer.Option(help=_help("max_batch_size"))] = _DEFAULTS.max_batch_size,
    max_queue: Annotated[int, typer.Option(help=_help("max_queue"))] = _DEFAULTS.max_queue,
    batch_wait_ms: Annotated[float, typer.Option(help=_help("batch_wait_ms"))] = _DEFAULTS.batch_wait_ms,
    join_wait_ms: Annotated[float, typer.Option(help=_help("join_wait_ms"))] = _DEFAULTS.join_wait_ms,
    stream_interval_ms: Annotated[float, typer.Option(help=_help("stream_interval_ms"))] = _DEFAULTS.stream_interval_ms,
    adapter_cache: Annotated[int, typer.Option(help=_help("adapter_cache"))] = _DEFAULTS.adapter_cache,
    max_input_tokens: Annotated[int, typer.Option(help=_help("max_input_tokens"))] = _DEFAULTS.max_input_tokens,
    max_output_tokens: Annotated[int, typer.Option(help=_help("max_output_tokens"))] = _DEFAULTS.max_output_tokens,
    engine: Annotated[str, typer.Option(help=_help("engine"))] = _DEFAULTS.engine,
) -> None:
    """Serve a base model and its adapters over an OpenAI-compatible HTTP API."""
    import uvicorn
    from pydantic import ValidationError

    from .app import create_app

    try:
        config = ServeConfig(
            model=model,
            served_model_name=served_model_name,
            adapters=_parse_adapters(adapter or []),
            api_key=api_key,
            platform=platform,
            max_batch_size=max_batch_size,
            max_queue=max_queue,
            batch_wait_ms=batch_wait_ms,
            join_wait_ms=join_wait_ms,
            stream_interval_ms=stream_interval_ms,
            adapter_cache=adapter_cache,
            max_input_tokens=max_input_tokens,
            max_output_tokens=max_output_tokens,
            engine=engine,
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    # Streams in flight get this long to finish after SIGTERM before uvicorn closes them.
    uvicorn.run(create_app(config), host=host, port=port, timeout_graceful_shutdown=60)


def register(app: typer.Typer) -> None:
    """Add `serve` to the `tuneflow` command."""
    app.command("serve")(serve)
