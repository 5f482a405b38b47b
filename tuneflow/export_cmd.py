"""`tuneflow export CONFIG.yaml [key=value ...]`: merge, quantize or convert a model into export_dir."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def export_command(
    config: Annotated[Path, typer.Argument(help="YAML with LLaMA-Factory export keys (model_name_or_path, ...).")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value pairs overriding the YAML, e.g. export_format=onnx.")
    ] = None,
) -> None:
    """Export a model (embedded mode): the files and manifest.json land in export_dir, verified, or nothing does."""
    from services.export.config import load_export_config
    from services.export.errors import ExportError
    from services.export.pipeline import export_to_dir

    try:
        export_config = load_export_config(config, overrides)
        if not export_config.export_dir:
            raise ExportError("export_dir is not set: give it in the YAML or as export_dir=PATH")
        manifest = export_to_dir(export_config, Path(export_config.export_dir), progress=typer.echo)
    except ExportError as exc:
        typer.echo(f"export failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    for check in manifest.verification:
        typer.echo(f"  {check.name}: {check.value} (<= {check.tolerance}) passed")
    if manifest.quantization:
        q = manifest.quantization
        typer.echo(
            f"  size {q.size_before_bytes} -> {q.size_after_bytes} bytes; "
            f"perplexity {q.perplexity_before:.3f} -> {q.perplexity_after:.3f} ({q.perplexity_change:+.3f})"
        )
    for message in manifest.messages:
        typer.echo(f"note: {message}")
    typer.echo(f"{manifest.format.value} export written to {export_config.export_dir}")
