"""Seeded rule-based augmentation: system-prompt and instruction-template variants of conversations."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator

from shared.schemas.datasets import AugmentConfig

from .converters import Record
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
    records: Iterator[tuple[Location, Record]], config: AugmentConfig, seed: int, builder: ReportBuilder
) -> Iterator[tuple[Location, Record]]:
    """Yield each record followed by up to `config.variants` distinct variants (text records pass unchanged).

    Args:
        records: Cleaned records with their locations.
        config: Which variants to make.
        seed: Makes the draws reproducible.
        builder: Counts the variants added.
    """
    rng = random.Random(seed)
    for loc, record in records:
        yield loc, record
        if "messages" not in record or "chosen" in record:
            continue
        seen = [record]
        for _ in range(config.variants):
            variant = make_variant(record, config, rng)
            if variant not in seen:
                seen.append(variant)
                builder.report.augmented += 1
                yield loc, variant
