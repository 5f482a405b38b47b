"""`tuneflow data ...`: convert, validate, stats, prepare and preview datasets from the command line.

Every command exits non-zero and prints a located report when the input has problems.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.schemas.datasets import DataCheckConfig, DataReport, PrepareConfig

data_app = typer.Typer(help="Convert, validate, inspect and prepare datasets.", no_args_is_help=True)

DatasetArg = Annotated[list[str], typer.Argument(help="Registry names (with --dataset-dir) or file paths.")]
DirOpt = Annotated[str | None, typer.Option(help="Folder (or store:// prefix) holding dataset_info.json.")]
StageOpt = Annotated[str, typer.Option(help="sft, pt, rm or dpo.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Tokenizer: folder, hub id or store:// prefix.")]
TemplateOpt = Annotated[str | None, typer.Option(help="LLaMA-Factory template name; default: the chat_template.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def register(app: typer.Typer) -> None:
    """Add the `data` command group to the `tuneflow` app."""
    app.add_typer(data_app, name="data")


def _store() -> Any:
    from shared.storage import get_store

    return get_store()


def _print_report(report: DataReport) -> None:
    for p in report.problems:
        where = f"line {p.line}" if p.line is not None else f"record {p.index}" if p.index is not None else "file"
        field = f" [{p.field}]" if p.field else ""
        typer.echo(f"{p.file} {where}{field}: {p.reason} ({p.code})", err=True)
    if report.problems_omitted:
        typer.echo(f"... and {report.problems_omitted} more problems", err=True)
    dropped = sum(report.dropped.values())
    typer.echo(f"{report.records_read} records read, {report.records_valid} valid, {dropped} dropped", err=True)


def _fail_on(report: DataReport) -> None:
    if report.dropped:
        raise typer.Exit(1)


def _invalid(exc: Exception) -> typer.Exit:
    from services.data.validation import DataValidationError

    if isinstance(exc, DataValidationError):
        _print_report(exc.report)
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@data_app.command()
def convert(
    input: Annotated[Path, typer.Option("--input", help="File to read (any supported layout and type).")],
    output: Annotated[Path, typer.Option("--output", help="JSONL file to write.")],
    format: Annotated[str, typer.Option("--format", help="alpaca, sharegpt, openai or conversations.")],
    stage: StageOpt = "sft",
) -> None:
    """Rewrite a dataset in another layout; records that cannot be read or held are reported."""
    from services.data.convert import FORMATS, to_format
    from services.data.converters import RecordError
    from services.data.registry import detect_attr
    from services.data.validation import ReportBuilder, validated_records

    if format not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    builder = ReportBuilder()
    with open(output, "w", encoding="utf-8") as fh:
        for loc, record in validated_records(input, detect_attr(input, str(input)), stage, builder):
            try:
                fh.write(json.dumps(to_format(record, format), ensure_ascii=False) + "\n")
                builder.report.records_written += 1
            except RecordError as exc:
                builder.drop(loc.problem(exc.code, exc.reason, exc.field))
    _print_report(builder.report)
    typer.echo(f"wrote {builder.report.records_written} records to {output}")
    _fail_on(builder.report)


def _check_config(datasets: list[str], dataset_dir: str | None, stage: str, **options: Any) -> DataCheckConfig:
    try:
        return DataCheckConfig(dataset=datasets, dataset_dir=dataset_dir, stage=stage, **options)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@data_app.command()
def validate(
    datasets: DatasetArg,
    dataset_dir: DirOpt = None,
    stage: StageOpt = "sft",
    strict: Annotated[bool, typer.Option(help="Stop at the first invalid record.")] = False,
    model: ModelOpt = None,
    template: TemplateOpt = None,
    cutoff_len: Annotated[int | None, typer.Option(help="With --model: report records longer than this.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every record; print each problem with file, line or index, field and reason."""
    from services.data.checks import validate_dataset

    try:
        report, stats = validate_dataset(
            _check_config(
                datasets,
                dataset_dir,
                stage,
                strict=strict,
                model_name_or_path=model,
                template=template,
                cutoff_len=cutoff_len,
            ),
            store=_store(),
            user_id="local",
        )
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise _invalid(exc) from exc
    if as_json:
        typer.echo(
            json.dumps({"report": report.model_dump(), "stats": stats.model_dump()}, ensure_ascii=False, indent=2)
        )
    else:
        _print_report(report)
        typer.echo("valid" if not report.dropped else f"{sum(report.dropped.values())} invalid records")
    _fail_on(report)


@data_app.command()
def stats(
    datasets: DatasetArg,
    dataset_dir: DirOpt = None,
    stage: StageOpt = "sft",
    model: ModelOpt = None,
    template: TemplateOpt = None,
) -> None:
    """Counts, turns per conversation, scripts, duplicates and length histograms (tokens with --model)."""
    from services.data.checks import validate_dataset

    try:
        report, result = validate_dataset(
            _check_config(datasets, dataset_dir, stage, model_name_or_path=model, template=template),
            store=_store(),
            user_id="local",
        )
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise _invalid(exc) from exc
    typer.echo(json.dumps(result.model_dump(), ensure_ascii=False, indent=2))
    if report.dropped:
        _print_report(report)
        raise typer.Exit(1)


def _prepare_config(config: Path | None, overrides: dict[str, Any]) -> PrepareConfig:
    from shared.config_files import load_config

    try:
        values = load_config(config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return PrepareConfig.model_validate(values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML with PrepareConfig keys (LLaMA-Factory names).")]
DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="Comma-separated names or paths.")]
StageOverrideOpt = Annotated[str | None, typer.Option("--stage", help="sft, pt, rm or dpo.")]
CutoffLenOpt = Annotated[int | None, typer.Option("--cutoff-len", help="Maximum tokens per row.")]


@data_app.command()
def prepare(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    dataset: DatasetOpt = None,
    dataset_dir: DirOpt = None,
    template: TemplateOpt = None,
    stage: StageOverrideOpt = None,
    cutoff_len: CutoffLenOpt = None,
    val_size: Annotated[float | None, typer.Option(help="Validation fraction or count.")] = None,
    submit: Annotated[bool, typer.Option(help="Upload the folder and run data.prepare through the queue.")] = False,
    user: Annotated[str, typer.Option(help="Owner of the prepared dataset.")] = "local",
) -> None:
    """Validate, clean, render and tokenize; write the prepared dataset and print its manifest."""
    overrides: dict[str, Any] = {"model_name_or_path": model, "dataset": dataset, "dataset_dir": dataset_dir}
    overrides |= {"template": template, "stage": stage, "cutoff_len": cutoff_len, "val_size": val_size}
    cfg = _prepare_config(config, overrides)
    # Paraphrases are generated by the inference service inside a job, so paraphrasing always runs as one.
    as_job = submit or (cfg.augment is not None and cfg.augment.paraphrasing)
    try:
        manifest = _submit(cfg, user) if as_job else _prepare_here(cfg, user)
    except (ValueError, FileNotFoundError, KeyError, PermissionError) as exc:
        raise _invalid(exc) from exc
    _print_report(DataReport.model_validate(manifest["report"]))
    summary = {k: manifest[k] for k in ("dataset_id", "splits", "num_examples", "num_tokens", "num_trained_tokens")}
    typer.echo(json.dumps(summary, indent=2))


def _prepare_here(cfg: PrepareConfig, user: str) -> dict[str, Any]:
    from services.data.prepare import prepare_dataset

    return prepare_dataset(cfg, store=_store(), user_id=user, notify=lambda m, d: typer.echo(m, err=True)).model_dump(
        mode="json"
    )


def _submit(cfg: PrepareConfig, user: str) -> dict[str, Any]:
    """Upload the local folder so the tasks get object keys only, then send the data job's chain by name.

    The chain is `data.prepare`, preceded by `data.plan_paraphrases` and `inference.generate` when paraphrasing.
    """
    from services.data.chain import prepare_steps
    from services.data.sources import upload_dataset_folder
    from shared.db import migrate, session_scope
    from shared.db.jobs import create_job, ensure_user
    from shared.queue import send_chain
    from shared.schemas import JobKind
    from shared.settings import get_settings

    if cfg.dataset_dir is None or cfg.dataset_dir.startswith("store://"):
        raise ValueError(
            "--submit (and paraphrasing, which runs as a job) uploads a local --dataset-dir; give the folder "
            "holding dataset_info.json"
        )
    prefix = upload_dataset_folder(_store(), user, Path(cfg.dataset_dir), cfg.dataset)
    cfg = cfg.model_copy(update={"dataset_dir": prefix})
    migrate(get_settings().resolved_database_url)
    with session_scope() as session:
        ensure_user(session, user)
        job_id = create_job(session, user_id=user, kind=JobKind.DATA, config=cfg.model_dump(mode="json")).id
    typer.echo(f"job {job_id}: preparing from {prefix}", err=True)
    return send_chain(prepare_steps(cfg, job_id=job_id, user_id=user)).get()


@data_app.command()
def preview(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    dataset: DatasetOpt = None,
    dataset_dir: DirOpt = None,
    template: TemplateOpt = None,
    stage: StageOverrideOpt = None,
    cutoff_len: CutoffLenOpt = None,
    index: Annotated[int, typer.Option(help="Which valid record (0-based, across the datasets in order).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Show the exact tokens the model sees for one record; trained tokens are marked."""
    from services.data.converters import RecordError
    from services.data.preview import format_preview, preview_record
    from services.data.registry import dataset_label, resolve_dataset
    from services.data.rendering import Renderer
    from services.data.sources import local_dataset_dir
    from services.data.tokenization import LabelOptions
    from services.data.validation import ReportBuilder, validated_records
    from shared.modelkit import load_tokenizer

    overrides = {"model_name_or_path": model, "dataset": dataset, "dataset_dir": dataset_dir, "template": template}
    cfg = _prepare_config(config, overrides | {"stage": stage, "cutoff_len": cutoff_len})
    folder = local_dataset_dir(cfg.dataset_dir, _store(), "local")
    builder = ReportBuilder()
    streams = []
    for name in cfg.dataset:
        attr, path = resolve_dataset(name, folder)
        streams.append(validated_records(path, attr, cfg.stage, builder, dataset_label(attr, path, folder)))
    found = next(itertools.islice(itertools.chain.from_iterable(streams), index, None), None)
    if found is None:
        typer.echo(f"there is no valid record {index}", err=True)
        raise typer.Exit(1)
    loc, record = found
    renderer = Renderer(load_tokenizer(cfg.model_name_or_path), cfg.template, chat=cfg.stage != "pt")
    options = LabelOptions(cfg.cutoff_len, cfg.train_on_prompt, cfg.mask_history, cfg.overlong)
    try:
        rows = preview_record(record, renderer, options)
    except RecordError as exc:
        typer.echo(f"{loc.file}: {exc.reason}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps([[t.model_dump() for t in row] for row in rows], ensure_ascii=False))
        return
    where = f"line {loc.line}" if loc.line is not None else f"record {loc.index}"
    typer.echo(f"{loc.file} {where}; trained tokens shown as ⟦...⟧")
    typer.echo(format_preview(rows))
