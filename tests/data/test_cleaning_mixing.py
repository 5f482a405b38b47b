"""Cleaning, augmentation, mixing, balancing and statistics on small in-memory data."""

from __future__ import annotations

import json
from pathlib import Path

from services.data.augmentation import augment
from services.data.cleaning import Cleaner, mask_pii, normalize_text
from services.data.mixing import balanced_keep, mix_lines
from services.data.readers import Location
from services.data.stats import StatsCollector, dominant_script
from services.data.validation import ReportBuilder
from shared.schemas.datasets import AugmentConfig, CleaningConfig


def _chat(question: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def _run(config: CleaningConfig, records: list[dict]) -> tuple[list[dict], ReportBuilder]:
    builder = ReportBuilder()
    stream = ((Location("f.jsonl", line=i + 1), r) for i, r in enumerate(records))
    return [r for _, r in Cleaner(config, builder).clean(stream)], builder


def test_normalisation_keeps_indentation_and_unifies_unicode() -> None:
    assert normalize_text("  ｆｕｌｌ   width \t\n\n\n\nx  ", "NFKC", True) == "full   width\n\nx"
    assert normalize_text("e\u0301", "NFC", False) == "\u00e9"
    assert normalize_text("def f():\n    return 1", "NFC", True) == "def f():\n    return 1"


def test_pii_masking() -> None:
    text = "Mail bob.smith@example.com or call +1 415-555-0100; SSN 123-45-6789, ID 11010519491231002X."
    assert mask_pii(text) == "Mail <EMAIL> or call <PHONE>; SSN <ID>, ID <ID>."


def test_each_cleaning_step_reports_what_it_removed() -> None:
    config = CleaningConfig(dedup="near", min_chars=3, mask_pii=True)
    base = "The quick brown fox jumps over the lazy dog near the river bank today."
    records = [
        _chat("Tell me", base),
        _chat("Tell me", base),  # exact duplicate
        _chat("Tell me", base.replace("today", "today!")),  # near duplicate
        _chat("Short?", "ok"),  # too short
        _chat("Write to me", "at alice@example.org please"),
    ]
    kept, builder = _run(config, records)
    assert [r["messages"][1]["content"] for r in kept] == [base, "at <EMAIL> please"]
    report = builder.report
    assert report.cleaning == {"exact_duplicate": 1, "near_duplicate": 1, "too_short": 1, "pii_masked": 1}
    assert [(p.line, p.code) for p in report.problems] == [
        (2, "exact_duplicate"),
        (3, "near_duplicate"),
        (4, "too_short"),
    ]
    assert "f.jsonl line 1" in report.problems[0].reason


def test_augmentation_is_seeded_and_adds_distinct_variants() -> None:
    config = AugmentConfig(
        system_prompts=["Be kind.", "Be brief."], instruction_templates=["Q: {instruction}"], variants=2
    )
    records = [(Location("f", line=1), _chat("What is {x}?", "A"))]

    def run() -> list[dict]:
        return [r for _, r in augment(iter(records), config, seed=3, builder=ReportBuilder())]

    first = run()
    assert first == run()
    assert first[0] == _chat("What is {x}?", "A")
    assert all(r["messages"][1]["content"] == "Q: What is {x}?" for r in first[1:])
    assert {r["messages"][0]["content"] for r in first[1:]} <= {"Be kind.", "Be brief."}


def test_mixing_concat_and_interleave(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"n": f"a{i}"}) + "\n" for i in range(100)))
    b.write_text("".join(json.dumps({"n": f"b{i}"}) + "\n" for i in range(10)))

    def names(strategy: str, probs: list[float] | None = None) -> list[str]:
        return [json.loads(line)["n"] for line in mix_lines([a, b], [None, None], strategy, probs, seed=0)]

    assert names("concat") == [f"a{i}" for i in range(100)] + [f"b{i}" for i in range(10)]
    under = names("interleave_under", [0.5, 0.5])
    assert sum(n.startswith("b") for n in under) == 10 and len(under) < 40  # stops when b runs out
    over = names("interleave_over", [0.5, 0.5])
    assert {f"a{i}" for i in range(100)} <= set(over) and sum(n.startswith("b") for n in over) > 10
    assert names("interleave_under", [0.5, 0.5]) == under  # seeded


def test_balancing_downsamples_every_label_to_the_rarest() -> None:
    labels = ["pos"] * 8 + ["neg"] * 3 + ["neu"] * 5
    keep = balanced_keep(labels, seed=1)
    assert sorted(labels[i] for i in keep) == ["neg"] * 3 + ["neu"] * 3 + ["pos"] * 3
    assert keep == balanced_keep(labels, seed=1)


def test_stats_and_script_detection() -> None:
    assert dominant_script("你好，世界") == "han"
    assert dominant_script("こんにちは世界") == "kana"
    assert dominant_script("Привет") == "cyrillic"
    assert dominant_script("Hello there") == "latin"
    collector = StatsCollector()
    for record in [_chat("Hi", "Hello"), _chat("Hi", "Hello"), {"text": "你好"}]:
        collector.add(record)
    stats = collector.result()
    assert (stats.records, stats.duplicates, stats.kinds) == (3, 1, {"conversation": 2, "text": 1})
    assert stats.languages == {"latin": 2, "han": 1}
    assert stats.chars.max == 7 and stats.turns == {"1": 2}
