"""GPU checks (not in CI): the CUDA paths end to end on tiny models, one PASS/FAIL line each.

Training (bf16 LoRA, QLoRA 4-bit nf4, full) runs through the real data.prepare -> training.run chain in
embedded mode; the QLoRA and LoRA adapters are then merged and verified by the export service, served by
`tuneflow serve` and called over HTTP; last, the evaluation benchmark measures batched vs one-at-a-time
throughput on the GPU. A JSON summary goes to --out. Exits non-zero if any check failed.

    .venv/bin/python scripts/gpu_check.py [--out gpu_check.json] [--device cpu]

`--device cpu` is a dry run of the same steps on the CPU (no GPU-only assertions), to try the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRAINING = {
    "bf16 LoRA": {"finetuning_type": "lora", "bf16": True, "max_steps": 4},
    "QLoRA 4-bit nf4": {"finetuning_type": "lora", "quantization_bit": 4, "bf16": True, "max_steps": 4},
    "full fine-tune": {"finetuning_type": "full", "bf16": True, "max_steps": 2},
}


class Checks:
    """Runs named checks, prints PASS/FAIL with the detail each returns, and keeps the results."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}

    def run(self, name: str, check: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """Run `check`; a raised exception is a failure, its return value the details of a pass."""
        started = time.perf_counter()
        try:
            detail = check()
        except Exception as exc:  # noqa: BLE001 - report every check and go on
            self.results[name] = {"passed": False, "error": f"{type(exc).__name__}: {exc}"[-1500:]}
            print(f"FAIL {name}: {self.results[name]['error']}", flush=True)
            traceback.print_exc()
            return None
        self.results[name] = {"passed": True, "seconds": round(time.perf_counter() - started, 1), **detail}
        print(f"PASS {name}: {json.dumps(detail, default=str)}", flush=True)
        return detail

    @property
    def failed(self) -> int:
        """How many checks failed."""
        return sum(not r["passed"] for r in self.results.values())


def train(model: Path, extra: dict[str, Any], on_gpu: bool, work: Path) -> dict[str, Any]:
    """One training job through data.prepare -> training.run; its losses and its final/ folder, fetched."""
    from shared.storage import fetch_prefix, get_bytes, get_store
    from tuneflow.demo import DEMO_DATA
    from tuneflow.train_cmd import job_record, split_config, submit_training

    config = {
        "model_name_or_path": str(model),
        "dataset": "reviews",
        "dataset_dir": str(DEMO_DATA),
        "cutoff_len": 128,
        "per_device_train_batch_size": 8,
        "logging_steps": 1,
        "save_steps": 2,
        "learning_rate": 1e-3,
        **extra,
    }
    job_id, chain = submit_training(*split_config(config), "local")
    chain.result()
    job = job_record(job_id)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['status']}: {(job['error'] or {}).get('message', '')}")
    store = get_store()
    result = job["result"]
    log_key = result["outputs"]["logs"] + "trainer_log.jsonl"
    log = [json.loads(line) for line in get_bytes(store, log_key).decode().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    if len(losses) != extra["max_steps"] or any(loss != loss for loss in losses):
        raise RuntimeError(f"unexpected losses {losses}")
    if on_gpu and "gpu_peak_mb" not in log[-1]:
        raise RuntimeError("training did not run on the GPU (no GPU memory in the metrics)")
    final = fetch_prefix(store, result["outputs"]["final"], work / "fetched")
    return {"loss_first": losses[0], "loss_last": losses[-1], "gpu_peak_mb": log[-1].get("gpu_peak_mb"), "final": final}


def merge(adapter: Path, out: Path) -> dict[str, Any]:
    """Merge an adapter into its base through the export service; every verification check must pass."""
    from services.export.config import load_export_config
    from services.export.pipeline import export_to_dir

    config = load_export_config(None, [f"adapter_name_or_path={adapter}", f"export_dir={out}"])
    manifest = export_to_dir(config, out)
    return {check.name: check.value for check in manifest.verification}


def serve(base: Path, adapter: Path, on_gpu: bool) -> dict[str, Any]:
    """`tuneflow serve` with the base and the adapter; both answer a chat request over HTTP."""
    import httpx

    port = 8011
    command = [sys.executable, "-m", "tuneflow.cli", "serve", "--model", str(base), "--adapter", f"tuned={adapter}"]
    server = subprocess.Popen([*command, "--port", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tuneflow serve did not become healthy")
            time.sleep(1)
        answers = {}
        for name in (str(base), "tuned"):
            body = {"model": name, "messages": [{"role": "user", "content": "Great phone!"}], "max_tokens": 8}
            reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
            reply.raise_for_status()
            answers[name] = reply.json()["choices"][0]["message"]["content"]
        gpu_processes = gpu_pids() if on_gpu else set()
    finally:
        server.terminate()
        server.wait(60)
    if on_gpu and server.pid not in gpu_processes:
        raise RuntimeError(f"the server (pid {server.pid}) holds no GPU memory; nvidia-smi lists {gpu_processes}")
    return {"answers": answers}


def gpu_pids() -> set[int]:
    """Pids of the processes holding GPU memory, as nvidia-smi lists them."""
    listing = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"], check=True, capture_output=True, text=True
    )
    return {int(line) for line in listing.stdout.split()}


def evaluation_throughput(on_gpu: bool) -> dict[str, Any]:
    """The evaluation benchmark on this device: batched generation and perplexity must be >= 2x the plain loop."""
    output = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "eval_throughput.py")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    report = json.loads(output[output.index("{") :])
    ratios = {"generation": report["generation"]["ratio"]}
    for workload, scores in report["perplexity"].items():
        ratios[f"perplexity, {workload}"] = scores["ratio"]
        if abs(scores["tuneflow_perplexity"] - scores["plain_perplexity"]) > 1e-3 * scores["plain_perplexity"]:
            raise RuntimeError(f"{workload}: perplexities differ: {scores['tuneflow_perplexity']} vs plain loop's")
    if on_gpu and min(ratios.values()) < 2.0:
        raise RuntimeError(f"batching gains below 2x: {ratios}")
    return {"device": report["device"], "ratios": ratios, "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    args = parser.parse_args()
    on_gpu = args.device == "cuda"
    if not on_gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    work = Path(tempfile.mkdtemp(prefix="tuneflow-gpu-check-"))
    os.environ.update(TUNEFLOW_MODE="embedded", TUNEFLOW_HOME=str(work / "home"), HF_HUB_OFFLINE="1")
    import torch

    from shared.modelkit import TinyModelSpec, build_tiny_model
    from tuneflow.demo import DEMO_DATA

    checks = Checks()
    if on_gpu and not torch.cuda.is_available():
        print(f"FAIL cuda: torch {torch.__version__} sees no GPU")
        sys.exit(1)
    device = torch.cuda.get_device_name(0) if on_gpu else "cpu (dry run)"
    print(f"device: {device}; torch {torch.__version__}", flush=True)
    spec = TinyModelSpec(hidden_size=128, layers=2, corpus=[DEMO_DATA / "reviews.jsonl"])
    model = build_tiny_model(spec, work / "model")
    trained = {
        name: checks.run(f"train {name}", lambda e=extra: train(model, e, on_gpu, work))
        for name, extra in TRAINING.items()
    }
    for name in ("QLoRA 4-bit nf4", "bf16 LoRA"):
        if trained[name]:
            checks.run(f"merge {name} adapter", lambda n=name: merge(trained[n]["final"], work / f"merged-{n[:4]}"))
    if trained["bf16 LoRA"]:
        checks.run("serve base + LoRA adapter", lambda: serve(model, trained["bf16 LoRA"]["final"], on_gpu))
    checks.run("evaluation batching >= 2x", lambda: evaluation_throughput(on_gpu))
    summary = {"device": device, "torch": torch.__version__, "failed": checks.failed, "checks": checks.results}
    args.out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"{len(checks.results) - checks.failed}/{len(checks.results)} checks passed; summary in {args.out}")
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
