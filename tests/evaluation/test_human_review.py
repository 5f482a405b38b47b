"""Blind review: seeded sampling and shuffling, per-reviewer storage, aggregation and agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.evaluation.agreement import krippendorff_alpha_interval
from services.evaluation.human_review import create_review, get_review, submit_ratings, summarize_review
from services.evaluation.results import store_outcome
from services.evaluation.runner import EvalOutcome
from shared.schemas.evaluation import EvalResults, Rating, SampleResult
from shared.storage import ObjectKind, get_bytes, object_key
from shared.storage.local import LocalObjectStore

USER = "bob"
OUTPUTS = {"base": "short answer {}", "tuned": "a longer, better answer {}"}


def test_krippendorff_alpha_matches_the_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units, interval alpha 0.849.
    units = [[1, 1, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4], [4, 4, 4, 4]]
    units += [[1, 1, 2, 1], [2, 2, 2, 2], [5, 5, 5], [1, 1], [3]]
    assert krippendorff_alpha_interval(units) == pytest.approx(0.849, abs=5e-4)
    assert krippendorff_alpha_interval([[3, 3], [3, 3]]) is None  # no variation: undefined
    assert krippendorff_alpha_interval([[1], [5]]) is None  # nothing rated twice


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    """Two evaluated 'models' on the same five prompts."""
    store = LocalObjectStore(tmp_path / "objects")
    for job_id, model in (("evaljob-a", "base"), ("evaljob-b", "tuned")):
        samples = [
            SampleResult(index=i, prompt=f"q{i}", reference=f"r{i}", prediction=OUTPUTS[model].format(i))
            for i in range(5)
        ]
        results = EvalResults(job_id=job_id, model=model, metrics={}, num_samples=5)
        store_outcome(store, user_id=USER, job_id=job_id, outcome=EvalOutcome(results, samples))
    return store


def test_review_is_blind_shuffled_and_reproducible(store: LocalObjectStore) -> None:
    session = create_review(store, user_id=USER, review_id="rev-1", job_ids=["evaljob-a", "evaljob-b"], n=5, seed=7)
    assert len(session.items) == 5
    assert get_review(store, user_id=USER, review_id="rev-1") == session
    shown = get_bytes(store, object_key(USER, ObjectKind.EVALUATIONS, "rev-1", "session.json")).decode()
    assert not any(hidden in shown for hidden in ("base", "tuned", "evaljob"))
    mapping = json.loads(get_bytes(store, object_key(USER, ObjectKind.EVALUATIONS, "rev-1", "mapping.json")))
    for item in session.items:
        index = mapping["items"][item.item_id]["sample_index"]
        for slot, text in item.outputs.items():
            assert text == OUTPUTS[mapping["items"][item.item_id]["slots"][slot]].format(index)
    first_slots = {mapping["items"][item.item_id]["slots"]["A"] for item in session.items}
    again = create_review(store, user_id=USER, review_id="rev-2", job_ids=["evaljob-a", "evaljob-b"], n=5, seed=7)
    assert again.items == session.items
    assert len(first_slots) == 2, "seed 7 should put each model in slot A at least once"


def test_ratings_aggregate_per_model_with_agreement(store: LocalObjectStore) -> None:
    session = create_review(store, user_id=USER, review_id="rev-1", job_ids=["evaljob-a", "evaljob-b"], n=2, seed=3)
    mapping = json.loads(get_bytes(store, object_key(USER, ObjectKind.EVALUATIONS, "rev-1", "mapping.json")))

    def rate(reviewer: str, base: int, tuned: int) -> list[Rating]:
        out = []
        for item in session.items:
            for slot in item.outputs:
                score = base if mapping["items"][item.item_id]["slots"][slot] == "base" else tuned
                out.append(
                    Rating(reviewer=reviewer, item_id=item.item_id, slot=slot, quality=score, accuracy=score, fluency=5)
                )
        return out

    submit_ratings(store, user_id=USER, review_id="rev-1", ratings=rate("ann", 1, 1))
    submit_ratings(store, user_id=USER, review_id="rev-1", ratings=rate("ann", 2, 5))  # replaces ann's first pass
    submit_ratings(store, user_id=USER, review_id="rev-1", ratings=rate("ben", 1, 4))
    summary = summarize_review(store, user_id=USER, review_id="rev-1")
    by_model = {m.model: m for m in summary.models}
    assert by_model["base"].ratings == 4 and by_model["base"].reviewers == 2
    assert by_model["base"].mean["quality"] == pytest.approx(1.5)
    assert by_model["tuned"].mean["quality"] == pytest.approx(4.5)
    expected = krippendorff_alpha_interval([[2, 1], [2, 1], [5, 4], [5, 4]])
    assert summary.agreement["quality"] == pytest.approx(expected)
    assert summary.agreement["fluency"] is None  # everyone gave 5: alpha is undefined
    with pytest.raises(ValueError, match="has no output 'C'"):
        bad = Rating(reviewer="ann", item_id=session.items[0].item_id, slot="C", quality=1, accuracy=1, fluency=1)
        submit_ratings(store, user_id=USER, review_id="rev-1", ratings=[bad])
