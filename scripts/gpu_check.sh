#!/usr/bin/env bash
# GPU smoke checks for the training service (not in CI): bf16 LoRA, QLoRA 4-bit and a 2-step full fine-tune on a
# CUDA device, each through the real data.prepare -> training.run chain in embedded mode. Prints PASS/FAIL per
# check and exits non-zero if any failed.
#   scripts/gpu_check.sh [PYTHON]      (default: .venv/bin/python; needs a CUDA build of torch and bitsandbytes)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
WORK=$(mktemp -d /tmp/tuneflow-gpu-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"$PY" - "$WORK" <<'PY'
import os, sys, json
from pathlib import Path

work = Path(sys.argv[1])
os.environ.update(TUNEFLOW_MODE="embedded", TUNEFLOW_HOME=str(work / "home"))
import torch

if not torch.cuda.is_available():
    print("FAIL cuda: torch.cuda.is_available() is False (torch", torch.__version__, ")")
    sys.exit(1)
print("device:", torch.cuda.get_device_name(0))

from shared.modelkit import TinyModelSpec, build_tiny_model
from shared.storage import get_bytes, get_store
from tuneflow.demo import DEMO_DATA
from tuneflow.train_cmd import split_config, submit_training
from shared.db import Job, session_scope

model = build_tiny_model(TinyModelSpec(hidden_size=128, layers=2, corpus=[DEMO_DATA / "reviews.jsonl"]), work / "model")
base = {"model_name_or_path": str(model), "dataset": "reviews", "dataset_dir": str(DEMO_DATA), "cutoff_len": 128,
        "per_device_train_batch_size": 8, "logging_steps": 1, "save_steps": 2, "learning_rate": 1e-3}
checks = {
    "bf16 LoRA": {"finetuning_type": "lora", "bf16": True, "max_steps": 4},
    "QLoRA 4-bit nf4": {"finetuning_type": "lora", "quantization_bit": 4, "bf16": True, "max_steps": 4},
    "full fine-tune, 2 steps": {"finetuning_type": "full", "bf16": True, "max_steps": 2},
}
failed = 0
for name, extra in checks.items():
    try:
        prepare, train = split_config({**base, **extra})
        job_id, chain = submit_training(prepare, train, "local")
        chain.result()
        with session_scope() as session:
            job = session.get(Job, job_id)
            status, result, error = job.status, job.result, job.error
        if status != "succeeded":
            raise RuntimeError(f"job {status}: {(error or {}).get('message', '')[-800:]}")
        log = [json.loads(x) for x in get_bytes(get_store(), result["outputs"]["logs"] + "trainer_log.jsonl").decode().splitlines()]
        losses = [r["loss"] for r in log if "loss" in r]
        if "gpu_peak_mb" not in log[-1]:
            raise RuntimeError("training did not run on the GPU (no GPU memory in the metrics)")
        if len(losses) != extra["max_steps"] or not all(l == l for l in losses):
            raise RuntimeError(f"unexpected losses {losses}")
        print(f"PASS {name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}, GPU peak {log[-1]['gpu_peak_mb']:.0f} MB")
    except Exception as exc:  # noqa: BLE001 - report every check
        failed += 1
        print(f"FAIL {name}: {exc}")
sys.exit(1 if failed else 0)
PY
