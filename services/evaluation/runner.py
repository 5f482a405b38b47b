"""One evaluation run, top to bottom: generate, score text metrics, perplexity, multiple choice, analyse."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.schemas.evaluation import GENERATION_METRICS, BuiltinMetric, EvalConfig, EvalResults, SampleResult

from .analysis import analyse
from .dataset import EvalSet
from .generation import GenerationSettings, generate
from .metrics import TEXT_METRICS, detect_language
from .metrics.custom import run_custom_metric
from .metrics.multiple_choice import Question, score_multiple_choice
from .metrics.perplexity import perplexity, response_sequences, text_sequences
from .prompts import reference_text, render_prompt

BUILTIN = {m.value for m in BuiltinMetric}


@dataclass
class EvalOutcome:
    """What a run produced: aggregate results, per-sample records and per-question choices."""

    results: EvalResults
    samples: list[SampleResult]
    mc_records: list[dict[str, Any]] = field(default_factory=list)


def generation_settings(config: EvalConfig) -> GenerationSettings:
    """The decoding part of the config."""
    return GenerationSettings(
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        cutoff_len=config.cutoff_len,
        do_sample=config.do_sample,
        temperature=config.temperature,
        top_p=config.top_p,
        seed=config.seed,
        stop_words=config.stop_words,
    )


def _score_text(config: EvalConfig, samples: list[SampleResult], aggregate: dict[str, float]) -> None:
    predictions = [s.prediction for s in samples]
    references = [s.reference for s in samples]
    language = detect_language(references) if config.language == "auto" else config.language
    for name in config.metrics:
        if name in GENERATION_METRICS:
            output = TEXT_METRICS[name](predictions, references, language=language)
            aggregate.update(output.aggregate)
            for sample, scores in zip(samples, output.per_sample, strict=True):
                sample.scores.update(scores)
        elif name not in BUILTIN:
            scores = run_custom_metric(name, predictions, references)
            clash = sorted(set(scores) & set(aggregate))
            if clash:
                raise ValueError(f"custom metric {name!r} returned {clash}, names another metric already uses")
            aggregate.update(scores)


def _score_perplexity(
    config: EvalConfig, model: Any, tokenizer: Any, eval_set: EvalSet, samples: list[SampleResult]
) -> dict[str, float]:
    sequences = response_sequences(tokenizer, eval_set.samples, config.template)
    sequences += text_sequences(tokenizer, eval_set.texts)
    stride = config.ppl_stride or config.cutoff_len // 2
    result = perplexity(
        model,
        sequences,
        window=config.cutoff_len,
        stride=stride,
        batch_size=config.batch_size,
        pad_id=tokenizer.pad_token_id,
    )
    # Conversations come first in `sequences`; the raw texts after them have no sample record.
    for sample, value in zip(samples, result.per_sample[: len(samples)], strict=True):
        if value is not None:
            sample.scores["perplexity"] = value
    return {"perplexity": result.perplexity, "perplexity_tokens": float(result.tokens)}


def evaluate(
    config: EvalConfig,
    *,
    model: Any,
    tokenizer: Any,
    eval_set: EvalSet,
    job_id: str,
    mc_questions: Sequence[Question] = (),
    mc_dev: Sequence[Question] | None = None,
    on_phase: Callable[[str], None] = lambda message: None,
) -> EvalOutcome:
    """Run every metric in `config` and return the results (nothing is written here).

    `on_phase` is called after each phase with a progress line; the worker uses it to report progress
    and to stop a cancelled job between phases (by raising).
    """
    timings: dict[str, float] = {}
    aggregate: dict[str, float] = {}
    samples = [
        SampleResult(
            index=i,
            prompt=s.prompt,
            messages=s.messages,
            reference=reference_text(tokenizer, s.messages, s.response, config.template, s.tools),
            prediction="",
        )
        for i, s in enumerate(eval_set.samples)
    ]
    wants_generation = any(m not in BUILTIN or m in GENERATION_METRICS for m in config.metrics)
    if wants_generation and not samples:
        raise ValueError("eval_dataset holds no conversations; generation metrics need prompts with reference replies")
    if wants_generation:
        started = time.perf_counter()
        prompts = [render_prompt(tokenizer, s.messages, config.template, s.tools) for s in eval_set.samples]
        for sample, output in zip(
            samples, generate(model, tokenizer, prompts, generation_settings(config)), strict=True
        ):
            sample.prediction, sample.output_tokens, sample.truncated = output.text, output.tokens, output.truncated
        timings["generation_s"] = time.perf_counter() - started
        on_phase(f"generated {len(samples)} outputs in {timings['generation_s']:.1f}s")
        _score_text(config, samples, aggregate)
    if BuiltinMetric.PERPLEXITY in config.metrics:
        started = time.perf_counter()
        aggregate.update(_score_perplexity(config, model, tokenizer, eval_set, samples))
        timings["perplexity_s"] = time.perf_counter() - started
        on_phase(f"perplexity {aggregate['perplexity']:.3f} in {timings['perplexity_s']:.1f}s")
    mc_records: list[dict[str, Any]] = []
    if BuiltinMetric.MC_ACCURACY in config.metrics:
        started = time.perf_counter()
        mc = score_multiple_choice(
            model,
            tokenizer,
            mc_questions,
            dev=mc_dev,
            n_shot=config.mc_n_shot,
            lang=config.mc_lang,
            subject=config.mc_subject,
            template=config.template,
            batch_size=config.batch_size,
            seed=config.seed,
        )
        aggregate["mc_accuracy"] = mc.accuracy
        mc_records = [
            {"index": i, "question": q.question, "answer": q.answer, "prediction": p, "option_logprobs": lp}
            for i, (q, p, lp) in enumerate(zip(mc_questions, mc.predictions, mc.option_logprobs, strict=True))
        ]
        timings["multiple_choice_s"] = time.perf_counter() - started
        on_phase(f"multiple-choice accuracy {mc.accuracy:.3f} on {len(mc_questions)} questions")
    results = EvalResults(
        job_id=job_id,
        model=config.label,
        metrics=aggregate,
        num_samples=len(samples),
        analysis=analyse(samples) if wants_generation else None,
        timings=timings,
        config=config.model_dump(mode="json"),
    )
    return EvalOutcome(results, samples, mc_records)
