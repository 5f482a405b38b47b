"""Side-by-side comparison of models evaluated on the same set."""

from __future__ import annotations

from collections.abc import Sequence

from shared.schemas.evaluation import Comparison, EvalResults, SampleResult
from shared.storage import ObjectKind, ObjectStore, object_key, put_bytes

from .analysis import primary_metric
from .results import load_run

COMPARISON = "comparison.json"


def check_same_set(runs: Sequence[tuple[EvalResults, list[SampleResult]]]) -> None:
    """Raise ValueError unless every run evaluated the same prompts with the same references, in order."""
    base_results, base = runs[0]
    for results, samples in runs[1:]:
        same = len(samples) == len(base) and all(
            a.prompt == b.prompt and a.reference == b.reference for a, b in zip(base, samples, strict=True)
        )
        if not same:
            raise ValueError(
                f"jobs {base_results.job_id} and {results.job_id} were not evaluated on the same prompts; "
                "only runs on one evaluation set can be compared"
            )


def model_labels(runs: Sequence[tuple[EvalResults, list[SampleResult]]]) -> list[str]:
    """One distinct display name per run."""
    # Two runs of one model (e.g. different decoding) must stay apart in every table.
    names = [r.model for r, _ in runs]
    return [n if names.count(n) == 1 else f"{n} ({r.job_id})" for n, (r, _) in zip(names, runs, strict=True)]


def compare(runs: Sequence[tuple[EvalResults, list[SampleResult]]], *, show_samples: int = 20) -> Comparison:
    """Compare runs against the first (the baseline): metric table, deltas, per-sample wins, sample outputs.

    Deltas are plain differences; for perplexity lower is better, for every other built-in higher is.
    """
    if len(runs) < 2:
        raise ValueError("a comparison needs at least two evaluation runs")
    check_same_set(runs)
    labels = model_labels(runs)
    names = sorted({m for r, _ in runs for m in r.metrics})
    metrics = {
        m: {label: r.metrics[m] for label, (r, _) in zip(labels, runs, strict=True) if m in r.metrics} for m in names
    }
    base_label = labels[0]
    deltas = {
        m: {label: value - by_model[base_label] for label, value in by_model.items()}
        for m, by_model in metrics.items()
        if base_label in by_model
    }
    metric = primary_metric([s for _, samples in runs for s in samples])
    wins: dict[str, dict[str, int]] = {}
    if metric is not None:
        base = runs[0][1]
        for label, (_, samples) in zip(labels[1:], runs[1:], strict=True):
            diffs = [s.scores[metric] - b.scores[metric] for s, b in zip(samples, base, strict=True)]
            wins[label] = {
                "better": sum(d > 0 for d in diffs),
                "same": sum(d == 0 for d in diffs),
                "worse": sum(d < 0 for d in diffs),
            }
    shown = [
        {
            "index": sample.index,
            "prompt": sample.prompt,
            "reference": sample.reference,
            "outputs": {label: run[1][sample.index].prediction for label, run in zip(labels, runs, strict=True)},
        }
        for sample in runs[0][1][:show_samples]
    ]
    return Comparison(
        models=labels,
        job_ids=[r.job_id for r, _ in runs],
        metrics=metrics,
        deltas=deltas,
        wins=wins,
        primary_metric=metric,
        samples=shown,
    )


def compare_jobs(store: ObjectStore, *, user_id: str, job_ids: Sequence[str], comparison_id: str) -> Comparison:
    """Compare stored evaluation jobs and store the result at `users/{user}/evaluations/{id}/comparison.json`."""
    comparison = compare([load_run(store, user_id=user_id, job_id=j) for j in job_ids])
    key = object_key(user_id, ObjectKind.EVALUATIONS, comparison_id, COMPARISON)
    put_bytes(store, key, comparison.model_dump_json(indent=2).encode(), "application/json")
    return comparison
