"""Run LLaMA-Factory's own SFT preprocessing on a JSONL file and print JSON timings.

Runs inside LLaMA-Factory's venv (it imports nothing from TuneFlow):
    python benchmarks/data_llamafactory.py --data FILE --model DIR --template qwen --cutoff-len 1024 --out DIR
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--template", default="qwen")
    parser.add_argument("--cutoff-len", type=int, default=1024)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    folder = args.out / "lf-data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / args.data.name).unlink(missing_ok=True)
    (folder / args.data.name).symlink_to(args.data.resolve())
    (folder / "dataset_info.json").write_text(json.dumps({"bench": {"file_name": args.data.name}}))

    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    model_args, data_args, training_args, _, _ = get_train_args(
        {
            "model_name_or_path": args.model,
            "stage": "sft",
            "do_train": True,
            "finetuning_type": "lora",
            "dataset": "bench",
            "dataset_dir": str(folder),
            "template": args.template,
            "cutoff_len": args.cutoff_len,
            "overwrite_cache": True,
            "preprocessing_num_workers": 1,
            "output_dir": str(args.out / "lf-out"),
            "report_to": "none",
        }
    )
    start = time.perf_counter()
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    module = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)
    seconds = time.perf_counter() - start
    rows = len(module["train_dataset"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(seconds, 2), "rows": rows, "peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
