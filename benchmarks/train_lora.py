"""LoRA SFT throughput: TuneFlow vs a plain transformers Trainer + PEFT script vs LLaMA-Factory, as JSON.

The run is the one in ../shared/bench/llamafactory/README.md: a 40M-parameter random-init Qwen2 (hidden 512,
8 layers, 8/4 heads, MLP 1408, vocab 16384, tokenizer trained on the demo data), the first 200 records of
alpaca_en_demo, cutoff 512, batch 4, LoRA rank 8 on every linear layer, lr 1e-4 cosine with 10% warm-up, one
epoch, fp32, seed 42, gradient checkpointing on (LLaMA-Factory's default). Every run is a separate process,
measured the same way: tokens/s = non-padding tokens trained / the Trainer's train_runtime; peak memory = the
training process's maximum RSS; final loss = the Trainer's train_loss.

    python benchmarks/train_lora.py [--llamafactory-venv /tmp/llamafactory-venv] [--work /tmp/tuneflow-bench-train]

LLaMA-Factory runs are skipped (with a message) when its venv is absent; build it with
../shared/bench/llamafactory/setup.sh. Run on a quiet machine: ratios from one run are what count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LF_YAML = SHARED / "bench" / "llamafactory" / "lora_sft.yaml"
DATA_DIR = SHARED / "data" / "llamafactory-demo"
SAMPLES = 200


def build_model(folder: Path) -> Path:
    """The README's model, built once with the project's model kit."""
    from shared.modelkit import TinyModelSpec, build_tiny_model

    if (folder / "config.json").exists():
        return folder
    spec = TinyModelSpec(
        arch="qwen2",
        hidden_size=512,
        layers=8,
        heads=8,
        kv_heads=4,
        intermediate_size=1408,
        vocab_size=16384,
        corpus=[DATA_DIR / "alpaca_en_demo.json"],
        seed=42,
    )
    return build_tiny_model(spec, folder)


def matmul_params(model_dir: Path) -> int:
    """Weights that take part in matrix multiplies (every Linear, the output head included)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    head_dim = c.hidden_size // c.num_attention_heads
    attention = 2 * c.hidden_size * c.hidden_size + 2 * c.hidden_size * c.num_key_value_heads * head_dim
    return c.num_hidden_layers * (attention + 3 * c.hidden_size * c.intermediate_size) + c.vocab_size * c.hidden_size


def matmul_peak_gflops(seconds: float = 3.0) -> float:
    """fp32 2048x2048 `torch.mm` throughput on this machine, now."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * 2048**3 * count / (time.perf_counter() - start) / 1e9


# ---- the three contenders, each run in its own process -------------------------------------------------


def run_tuneflow(model_dir: Path, work: Path, overrides: list[str]) -> dict[str, Any]:
    """The reference YAML through `tuneflow train`'s code path: data.prepare -> training.run, embedded."""
    os.environ.update(TUNEFLOW_MODE="embedded", TUNEFLOW_HOME=str(work / "tuneflow-home"), HF_HUB_OFFLINE="1")
    subprocess.run(["rm", "-rf", str(work / "tuneflow-home")], check=True)
    from shared.config_files import load_config
    from shared.storage import get_bytes, get_store
    from tuneflow.train_cmd import job_record, split_config, submit_training

    # Cleaning off: every contender trains on the same 200 records, as they are.
    cleaning = "cleaning={dedup: none, strip_whitespace: false, unicode_form: null, min_chars: 0}"
    flat = load_config(
        LF_YAML,
        [f"model_name_or_path={model_dir}", f"dataset_dir={DATA_DIR}", f"max_samples={SAMPLES}", cleaning, *overrides],
    )
    prepare, train = split_config(flat)
    job_id, chain = submit_training(prepare, train, "local")
    chain.result()
    job = job_record(job_id)
    if job["status"] != "succeeded":
        raise RuntimeError(f"TuneFlow job {job['status']}: {job['error']}")
    metrics = json.loads(get_bytes(get_store(), job["result"]["outputs"]["metrics"]))
    return {
        "tokens": metrics["tokens_seen"],
        "train_runtime_s": metrics["train_runtime"],
        "samples_per_s": metrics["train_samples_per_second"],
        "final_loss": metrics["train_loss"],
        "peak_rss_mb": metrics["peak_rss_mb"],
    }


def run_plain(model_dir: Path, work: Path) -> dict[str, Any]:
    """What a user would write by hand: chat template, prompt masking, padded batches, Trainer + PEFT."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    for record in json.loads((DATA_DIR / "alpaca_en_demo.json").read_text())[:SAMPLES]:
        user = record["instruction"] + ("\n" + record["input"] if record.get("input") else "")
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]
        prompt = tokenizer.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        prompt_ids = tokenizer(prompt)["input_ids"]
        ids = tokenizer(full)["input_ids"][:512]
        rows["input_ids"].append(ids)
        rows["attention_mask"].append([1] * len(ids))
        rows["labels"].append(([-100] * len(prompt_ids) + ids[len(prompt_ids) :])[: len(ids)])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, target_modules="all-linear"))
    args = TrainingArguments(
        output_dir=str(work / "plain-out"),
        per_device_train_batch_size=4,
        learning_rate=1e-4,
        num_train_epochs=1,
        lr_scheduler_type="cosine",
        warmup_steps=0.1,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        seed=42,
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(rows),
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100),
    )
    metrics = trainer.train().metrics
    return {
        "tokens": trainer.state.num_input_tokens_seen,
        "train_runtime_s": metrics["train_runtime"],
        "samples_per_s": metrics["train_samples_per_second"],
        "final_loss": metrics["train_loss"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_llamafactory(model_dir: Path, work: Path, venv: Path, packed: bool) -> dict[str, Any]:
    """LLaMA-Factory's own CLI on the reference YAML, in its venv; peak RSS is the CLI process's."""
    out = work / ("lf-packed" if packed else "lf-default")
    tokenized = work / ("lf-tokenized-packed" if packed else "lf-tokenized")
    args = [f"model_name_or_path={model_dir}", f"dataset_dir={DATA_DIR}", f"output_dir={out}"]
    args += [f"max_samples={SAMPLES}", f"tokenized_path={tokenized}"]
    if packed:
        args += ["packing=true", "neat_packing=false"]
    for stale in (tokenized, out):
        subprocess.run(["rm", "-rf", str(stale)], check=True)
    rusage = _run_measured([str(venv / "bin" / "llamafactory-cli"), "train", str(LF_YAML), *args], cwd=work)
    results = json.loads((out / "train_results.json").read_text())
    tokens = results.get("num_input_tokens_seen")
    if packed:  # pack padding is marked as attention 1: count real tokens in the saved tokenized set
        from datasets import load_from_disk
        from transformers import AutoTokenizer

        pad = AutoTokenizer.from_pretrained(model_dir).pad_token_id
        data = load_from_disk(str(tokenized))
        data = data["train"] if hasattr(data, "keys") and "train" in data else data
        tokens = sum(sum(1 for t in row if t != pad) for row in data["input_ids"])
    return {
        "tokens": tokens,
        "train_runtime_s": results["train_runtime"],
        "samples_per_s": results["train_samples_per_second"],
        "final_loss": results["train_loss"],
        "peak_rss_mb": rusage,
    }


def _run_measured(cmd: list[str], cwd: Path) -> float:
    """Run `cmd` in a fresh wrapper process and return the peak RSS (MiB) of its largest descendant."""
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    done = subprocess.run([sys.executable, "-c", wrapper, *cmd], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def _in_subprocess(run: str, model_dir: Path, work: Path, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--run", run, "--model", str(model_dir), "--work", str(work), *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{run} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tuneflow-bench-train"))
    parser.add_argument("--llamafactory-venv", type=Path, default=Path("/tmp/llamafactory-venv"))
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    args.work.mkdir(parents=True, exist_ok=True)

    if args.run == "tuneflow":
        print(json.dumps(run_tuneflow(args.model, args.work, rest)))
        return
    if args.run == "plain":
        print(json.dumps(run_plain(args.model, args.work)))
        return

    model_dir = build_model(args.work / "model")
    lf_cli = args.llamafactory_venv / "bin" / "llamafactory-cli"
    if not lf_cli.exists():
        print(f"LLaMA-Factory venv not found at {args.llamafactory_venv}: skipping its runs", file=sys.stderr)
    # (name, how to run it, gradient checkpointing, packing). TuneFlow's padding-free packing (no
    # cross-sample attention) is its recommended setting on CPU.
    plan = [
        ("tuneflow_packed", lambda: _in_subprocess("tuneflow", model_dir, args.work, ["packing=true"]), True, True),
        ("plain_transformers_peft", lambda: _in_subprocess("plain", model_dir, args.work, []), True, False),
        (
            "llamafactory_default",
            lambda: run_llamafactory(model_dir, args.work, args.llamafactory_venv, False),
            True,
            False,
        ),
        (
            "llamafactory_packed",
            lambda: run_llamafactory(model_dir, args.work, args.llamafactory_venv, True),
            True,
            True,
        ),
        (
            "tuneflow_packed_no_gc",
            lambda: _in_subprocess(
                "tuneflow", model_dir, args.work, ["packing=true", "disable_gradient_checkpointing=true"]
            ),
            False,
            True,
        ),
    ]
    runs: dict[str, dict[str, Any]] = {}
    for name, run, checkpointing, packing in plan:
        if name.startswith("llamafactory") and not lf_cli.exists():
            continue
        # Shared machines drift: the matmul peak measured just before each run lets ratios be load-normalized.
        peak_before = matmul_peak_gflops(2.0)
        runs[name] = {**run(), "gradient_checkpointing": checkpointing, "packing": packing}
        runs[name]["matmul_peak_gflops_before"] = peak_before
    peak = max(r["matmul_peak_gflops_before"] for r in runs.values())

    flops_per_token = 6 * matmul_params(model_dir)  # the README's convention: 6 x matmul weights per token
    for run in runs.values():
        run["tokens_per_s"] = run["tokens"] / run["train_runtime_s"]
        run["executed_gflops"] = flops_per_token * run["tokens_per_s"] / 1e9
        run["flop_utilization"] = run["executed_gflops"] / run["matmul_peak_gflops_before"]
        for key, value in run.items():
            if isinstance(value, float):
                run[key] = round(value, 4 if key in ("final_loss", "flop_utilization") else 1)

    def ratio(a: str, b: str, key: str = "tokens_per_s") -> float | None:
        return round(runs[a][key] / runs[b][key], 3) if a in runs and b in runs else None

    report = {
        "benchmark": "LoRA SFT, 40M Qwen2, alpaca_en_demo[:200], cutoff 512, batch 4, rank 8, fp32, 1 epoch",
        "cpu_threads": os.cpu_count(),
        "matmul_peak_gflops": round(peak, 1),
        "note": "flop_utilization = 6 x matmul weights x tokens/s over the matmul peak measured just before that run",
        "runs": runs,
        "ratios": {
            "tuneflow_vs_llamafactory_default_tokens_per_s": ratio("tuneflow_packed", "llamafactory_default"),
            "tuneflow_vs_llamafactory_packed_tokens_per_s": ratio("tuneflow_packed", "llamafactory_packed"),
            "tuneflow_vs_plain_tokens_per_s": ratio("tuneflow_packed", "plain_transformers_peft"),
            "tuneflow_vs_llamafactory_default_peak_rss": ratio(
                "tuneflow_packed", "llamafactory_default", "peak_rss_mb"
            ),
            "tuneflow_vs_llamafactory_packed_peak_rss": ratio("tuneflow_packed", "llamafactory_packed", "peak_rss_mb"),
            "load_normalized_vs_llamafactory_default": ratio(
                "tuneflow_packed", "llamafactory_default", "flop_utilization"
            ),
            "load_normalized_vs_llamafactory_packed": ratio(
                "tuneflow_packed", "llamafactory_packed", "flop_utilization"
            ),
            "tuneflow_no_gc_vs_llamafactory_default_tokens_per_s": ratio(
                "tuneflow_packed_no_gc", "llamafactory_default"
            ),
        },
        "targets": {"vs_llamafactory_default": ">= 1.3", "vs_llamafactory_packed": ">= 1.0", "peak_rss": "<= 1.0"},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
