"""Evaluation throughput: TuneFlow's batched generation and perplexity vs a plain one-sample transformers loop.

Same model, same prompts, same greedy settings on both sides; prints one JSON object with samples/s
(generation), scored tokens/s (perplexity) and the ratios. Outputs of both sides are compared too, so a
speed-up never comes from doing different work. Runs on the device evaluation would use (CUDA when there is
one); the perplexity batch-size sweep shows whether batching can pay on it at all.

    python benchmarks/eval_throughput.py [--model DIR] [--samples 64] [--batch-size 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from services.evaluation.dataset import EvalSample
from services.evaluation.generation import GenerationSettings, generate
from services.evaluation.loading import load_for_evaluation
from services.evaluation.metrics.perplexity import perplexity, response_sequences
from services.evaluation.prompts import render_prompt

SWEEP_BATCH_SIZES = (1, 4, 16, 64)  # perplexity tokens/s at each: shows whether batching can pay on this device
DEMO_REVIEWS = Path(__file__).resolve().parents[1] / "tuneflow" / "demo_data" / "reviews.jsonl"
REFERENCE_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llamafactory-demo" / "alpaca_en_demo.json"


def load_samples(n: int) -> list[EvalSample]:
    """Long-answer prompts and references from LLaMA-Factory's alpaca demo, or seeded synthetic ones without it."""
    if REFERENCE_DATA.is_file():
        rows = json.loads(REFERENCE_DATA.read_text())[:n]
        pairs = [((r["instruction"] + "\n" + r["input"]).strip(), r["output"]) for r in rows]
    else:
        pairs = [(f"Question {i}: " + "why " * (i % 17), "Because. " * (i % 9 + 1)) for i in range(n)]
    return [EvalSample([{"role": "user", "content": q}], {"role": "assistant", "content": a}) for q, a in pairs]


def load_short_answer_samples(n: int) -> list[EvalSample]:
    """Short-answer samples (a review, its one-word sentiment) from the project's own demo data."""
    with open(DEMO_REVIEWS, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh][:n]
    return [EvalSample(r["messages"][:-1], r["messages"][-1]) for r in rows]


def plain_generation(model: Any, tok: Any, prompts: list[str], max_new_tokens: int) -> list[str]:
    """What an ad-hoc script does: one prompt at a time through model.generate."""
    outputs = []
    for prompt in prompts:
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        outputs.append(tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    return outputs


def plain_perplexity(model: Any, sequences: list[Any]) -> tuple[float, int]:
    """The usual recipe: one sequence per forward pass, `labels` masking the prompt, loss times token count."""
    nll, count = 0.0, 0
    for seq in sequences:
        ids = torch.tensor([seq.input_ids], device=model.device)
        labels = torch.tensor(
            [[t if scored else -100 for t, scored in zip(seq.input_ids, seq.scored, strict=True)]], device=model.device
        )
        n = int((labels[0, 1:] != -100).sum())
        with torch.inference_mode():
            nll += model(input_ids=ids, labels=labels).loss.item() * n
        count += n
    return math.exp(nll / count), count


def perplexity_report(
    model: Any, sequences: list[Any], batch_size: int, window: dict[str, int], cutoff_len: int
) -> dict[str, Any]:
    """Scored tokens/s of TuneFlow's batched perplexity and of the plain loop on the same sequences."""
    short = [s for s in sequences if len(s.input_ids) <= cutoff_len]  # the plain loop has no windowing
    ours, ours_s = timed(perplexity, model, short, batch_size=batch_size, **window)
    (plain_ppl, plain_tokens), plain_s = timed(plain_perplexity, model, short)
    sweep = {}
    for size in SWEEP_BATCH_SIZES:
        result, seconds = timed(perplexity, model, short, batch_size=size, **window)
        sweep[str(size)] = round(result.tokens / seconds)
    lengths = sorted(len(s.input_ids) for s in short)
    return {
        "tuneflow_tokens_per_s": ours.tokens / ours_s,
        "plain_tokens_per_s": plain_tokens / plain_s,
        "ratio": plain_s / ours_s,
        "tuneflow_perplexity": ours.perplexity,
        "plain_perplexity": plain_ppl,
        "sequences_compared": len(short),
        "median_sequence_tokens": lengths[len(lengths) // 2],
        "scored_tokens": ours.tokens,
        "tuneflow_tokens_per_s_by_batch_size": sweep,
    }


def timed(fn: Any, *args: Any, repeats: int = 3, **kwargs: Any) -> tuple[Any, float]:
    """Result and best wall seconds of `repeats` calls (the minimum filters out noise from other processes)."""
    best, result = math.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    return result, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Model folder; default: a freshly built tiny Qwen2 (hidden 64, 2 layers).")
    parser.add_argument("--samples", type=int, default=64, help="Long-answer samples (generation and perplexity).")
    parser.add_argument("--short-samples", type=int, default=256, help="Short-answer samples (perplexity).")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--cutoff-len", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: fair on a shared box)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from shared.modelkit import TinyModelSpec, build_tiny_model

            model_dir = str(build_tiny_model(TinyModelSpec(), Path(tmp) / "tiny"))
        model, tok = load_for_evaluation(model_dir)
        samples = load_samples(args.samples)
        prompts = [render_prompt(tok, s.messages, None) for s in samples]
        settings = GenerationSettings(
            max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, cutoff_len=args.cutoff_len
        )
        generate(model, tok, prompts[:2], settings)  # warm-up: first-call allocations are not throughput

        ours, ours_s = timed(generate, model, tok, prompts, settings)
        plain, plain_s = timed(plain_generation, model, tok, prompts, args.max_new_tokens, repeats=1)
        same = sum(o.text == p for o, p in zip(ours, plain, strict=True))

        window = {"window": args.cutoff_len, "stride": args.cutoff_len // 2, "pad_id": tok.pad_token_id}
        long_answers = response_sequences(tok, samples, None)
        everything, everything_s = timed(perplexity, model, long_answers, batch_size=args.batch_size, **window)
        scoring = {
            "long_answers": perplexity_report(model, long_answers, args.batch_size, window, args.cutoff_len),
            "short_answers": perplexity_report(
                model,
                response_sequences(tok, load_short_answer_samples(args.short_samples), None),
                args.batch_size,
                window,
                args.cutoff_len,
            ),
        }
        scoring["long_answers"]["all_sequences_tokens_per_s"] = everything.tokens / everything_s

    report = {
        "model": args.model or "tiny qwen2 (hidden 64, 2 layers)",
        "device": str(next(model.parameters()).device),
        "torch_threads": args.threads,
        "samples": len(prompts),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "timing": "best of 3 runs, except the slow plain generation loop (1 run)",
        "generation": {
            "tuneflow_samples_per_s": len(prompts) / ours_s,
            "plain_samples_per_s": len(prompts) / plain_s,
            "ratio": plain_s / ours_s,
            "identical_outputs": f"{same}/{len(prompts)}",
        },
        "perplexity": scoring,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
