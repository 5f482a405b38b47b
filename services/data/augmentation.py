"""Seeded augmentation: system-prompt and instruction-template variants of conversations, and model paraphrases."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator

from shared.schemas.datasets import AugmentConfig

from .converters import Record
from .paraphrase import Paraphrases, paraphrase_variants
from .readers import Location
from .validation import ReportBuilder


def make_variant(record: Record, config: AugmentConfig, rng: random.Random) -> Record:
    """One variant of a conversation record: a drawn system prompt and/or a drawn first-instruction template."""
    variant = copy.deepcopy(record)
    messages = variant["messages"]
    if config.system_prompts:
        system = {"role": "system", "content": rng.choice(config.system_prompts)}
        if messages[0]["role"] == "system":
            messages[0] = system
        else:
            messages.insert(0, system)
    if config.instruction_templates:
        first_user = next(m for m in messages if m["role"] == "user")
        # str.replace, not str.format: instructions often contain braces (code, JSON).
        first_user["content"] = rng.choice(config.instruction_templates).replace("{instruction}", first_user["content"])
    return variant


def augment(
    records: Iterator[tuple[Location, Record]],
    config: AugmentConfig,
    seed: int,
    builder: ReportBuilder,
    paraphrases: Paraphrases | None = None,
) -> Iterator[tuple[Location, Record]]:
    """Yield each record, then up to `config.variants` distinct rule-based variants, then its usable paraphrases.

    Text and preference records pass unchanged.

    Args:
        records: Cleaned records with their locations.
        config: Which variants to make.
        seed: Makes the draws (and the choice of records to paraphrase) reproducible.
        builder: Counts the variants added and the paraphrases left out.
        paraphrases: The job's generated paraphrases, when `config.paraphrase_model` is set.
    """
    rng = random.Random(seed)
    rules = bool(config.system_prompts or config.instruction_templates)
    for loc, record in records:
        yield loc, record
        if "messages" not in record or "chosen" in record:
            continue
        seen = [record]
        for _ in range(config.variants if rules else 0):
            variant = make_variant(record, config, rng)
            if variant not in seen:
                seen.append(variant)
                builder.report.augmented += 1
                yield loc, variant
        if paraphrases is not None:
            for variant in paraphrase_variants(loc, record, paraphrases, config, seed, builder):
                yield loc, variant
