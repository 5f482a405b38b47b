"""Benchmark: validate and prepare a generated alpaca-style JSONL (default 1 GB) with bounded memory.

    .venv/bin/python benchmarks/data_prepare.py [--size-mb 1024] [--compare-records 20000]

Prints one JSON object: records/s and MB/s for validation and preparation, the measuring process's peak RSS,
and, where LLaMA-Factory's venv exists ($LLAMAFACTORY_VENV or /tmp/llamafactory-venv, built by
../shared/bench/llamafactory/setup.sh), the speed ratio against LLaMA-Factory's own SFT preprocessing of the
same first `--compare-records` records (else a skip message). Every tokenizer runs on one thread
(RAYON_NUM_THREADS=1, one preprocessing worker), so the ratio is per core. Data and outputs go to a temporary
folder outside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SINGLE_THREAD = {"RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
TEMPLATE, CUTOFF = "qwen", 1024


def measure_tuneflow(data: Path, model: Path, work: Path) -> dict:
    """Validate then prepare `data` in this process; return timings and peak RSS (run in a child process)."""
    from services.data.checks import validate_dataset
    from services.data.prepare import prepare_dataset
    from shared.modelkit import load_tokenizer
    from shared.schemas.datasets import DataCheckConfig, PrepareConfig
    from shared.storage.local import LocalObjectStore

    load_tokenizer(str(model))  # import transformers outside the timing, as the LLaMA-Factory side does
    store = LocalObjectStore(work / "objects")
    size_mb = data.stat().st_size / 2**20
    start = time.perf_counter()
    report, _ = validate_dataset(DataCheckConfig(dataset=[str(data)]), store=store, user_id="bench")
    validated = time.perf_counter() - start
    config = PrepareConfig(model_name_or_path=str(model), dataset=[str(data)], template=TEMPLATE, cutoff_len=CUTOFF)
    start = time.perf_counter()
    manifest = prepare_dataset(config, store=store, user_id="bench")
    prepared = time.perf_counter() - start
    records = report.records_read
    return {
        "size_mb": round(size_mb, 1),
        "records": records,
        "validate": {
            "seconds": round(validated, 2),
            "records_per_s": round(records / validated),
            "mb_per_s": round(size_mb / validated, 2),
        },
        "prepare": {
            "seconds": round(prepared, 2),
            "records_per_s": round(records / prepared),
            "mb_per_s": round(size_mb / prepared, 2),
            "rows": manifest.num_examples["train"],
            "tokens": manifest.num_tokens["train"],
            "dropped": sum(manifest.report.dropped.values()),
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _child(data: Path, model: Path, work: Path) -> dict:
    env = {**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, __file__, "--child", str(data), str(model), str(work)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _llamafactory(venv: Path, data: Path, model: Path, work: Path) -> dict:
    env = {**os.environ, **SINGLE_THREAD, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(work / "hf-cache")}
    cmd = [str(venv / "bin" / "python"), str(ROOT / "benchmarks" / "data_llamafactory.py"), "--data", str(data)]
    cmd += ["--model", str(model), "--template", TEMPLATE, "--cutoff-len", str(CUTOFF), "--out", str(work)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024, help="Size of the generated JSONL.")
    parser.add_argument("--compare-records", type=int, default=20000, help="Records both tools prepare for the ratio.")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_tuneflow(*map(Path, args.child))))
        return

    sys.path.insert(0, str(ROOT))
    from benchmarks.data_generate import generate_alpaca_jsonl, head_jsonl
    from shared.modelkit import TinyModelSpec, build_tiny_model

    with tempfile.TemporaryDirectory(prefix="tuneflow-bench-data-") as tmp_name:
        tmp = Path(tmp_name)
        model = build_tiny_model(TinyModelSpec(arch="qwen2"), tmp / "model")
        data = tmp / "alpaca.jsonl"
        generate_alpaca_jsonl(data, int(args.size_mb * 2**20))
        result = {"threads": 1, "template": TEMPLATE, "cutoff_len": CUTOFF, "full": _child(data, model, tmp / "full")}

        venv = Path(os.environ.get("LLAMAFACTORY_VENV", "/tmp/llamafactory-venv"))
        if not (venv / "bin" / "python").exists():
            result["llamafactory"] = (
                f"skipped: no LLaMA-Factory venv at {venv} (see ../shared/bench/llamafactory/setup.sh)"
            )
        else:
            subset = tmp / "subset.jsonl"
            head_jsonl(data, subset, args.compare_records)
            ours = _child(subset, model, tmp / "ours-subset")
            theirs = _llamafactory(venv, subset, model, tmp / "lf")
            result["llamafactory"] = {
                "records": args.compare_records,
                "tuneflow_prepare_seconds": ours["prepare"]["seconds"],
                "llamafactory_seconds": theirs["seconds"],
                "llamafactory_rows": theirs["rows"],
                "tuneflow_rows": ours["prepare"]["rows"],
                "speed_ratio": round(theirs["seconds"] / ours["prepare"]["seconds"], 2),
                "llamafactory_peak_rss_mb": theirs["peak_rss_mb"],
            }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
