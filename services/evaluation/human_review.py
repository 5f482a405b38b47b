"""Blind human review of model outputs, stored as JSON under `users/{user}/evaluations/{review_id}/`.

session.json is what reviewers see (outputs under shuffled slot letters); mapping.json, which slot
holds which model, never leaves the server. Each reviewer's ratings are one object, so reviewers
never overwrite each other, and re-rating an output replaces that reviewer's earlier rating.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from statistics import mean

from shared.schemas.evaluation import ModelReviewSummary, Rating, ReviewItem, ReviewSession, ReviewSummary
from shared.storage import ObjectKind, ObjectNotFoundError, ObjectStore, get_bytes, object_key, put_bytes

from .agreement import krippendorff_alpha_interval
from .comparison import check_same_set, model_labels
from .results import load_run

CRITERIA = ("quality", "accuracy", "fluency")
SESSION = "session.json"
MAPPING = "mapping.json"
RATINGS = "ratings/"


def _key(user_id: str, review_id: str, name: str) -> str:
    return object_key(user_id, ObjectKind.EVALUATIONS, review_id, name)


def _put_json(store: ObjectStore, key: str, value: object) -> None:
    put_bytes(store, key, json.dumps(value, ensure_ascii=False, indent=2).encode(), "application/json")


def create_review(
    store: ObjectStore,
    *,
    user_id: str,
    review_id: str,
    job_ids: Sequence[str],
    n: int,
    seed: int = 0,
    title: str = "",
    show_reference: bool = True,
) -> ReviewSession:
    """Sample `n` prompts evaluated by every job in `job_ids` and store a blind, shuffled review of them."""
    runs = [load_run(store, user_id=user_id, job_id=j) for j in job_ids]
    check_same_set(runs)
    labels = model_labels(runs)
    rng = random.Random(seed)  # the same seed gives the same sample and the same slot order
    samples = runs[0][1]
    indices = sorted(rng.sample(range(len(samples)), min(n, len(samples))))
    items, mapping = [], {}
    for number, index in enumerate(indices):
        order = rng.sample(range(len(runs)), len(runs))
        slots = [chr(ord("A") + k) for k in range(len(runs))]
        item_id = f"item-{number:04d}"
        items.append(
            ReviewItem(
                item_id=item_id,
                prompt=samples[index].prompt,
                reference=samples[index].reference if show_reference else "",
                outputs={slot: runs[run][1][index].prediction for slot, run in zip(slots, order, strict=True)},
            )
        )
        mapping[item_id] = {"sample_index": index, "slots": {s: labels[r] for s, r in zip(slots, order, strict=True)}}
    session = ReviewSession(review_id=review_id, title=title, items=items)
    _put_json(store, _key(user_id, review_id, SESSION), session.model_dump(mode="json"))
    _put_json(store, _key(user_id, review_id, MAPPING), {"job_ids": list(job_ids), "models": labels, "items": mapping})
    return session


def get_review(store: ObjectStore, *, user_id: str, review_id: str) -> ReviewSession:
    """The blind review as reviewers see it."""
    return ReviewSession.model_validate_json(get_bytes(store, _key(user_id, review_id, SESSION)))


def _reviewer_ratings(store: ObjectStore, user_id: str, review_id: str, reviewer: str) -> list[Rating]:
    try:
        data = json.loads(get_bytes(store, _key(user_id, review_id, f"{RATINGS}{reviewer}.json")))
    except ObjectNotFoundError:
        return []
    return [Rating.model_validate(r) for r in data]


def submit_ratings(store: ObjectStore, *, user_id: str, review_id: str, ratings: Sequence[Rating]) -> int:
    """Store ratings (any reviewers); a reviewer's new rating of an output replaces the old one. Returns the count."""
    session = get_review(store, user_id=user_id, review_id=review_id)
    slots = {item.item_id: set(item.outputs) for item in session.items}
    for rating in ratings:
        if rating.slot not in slots.get(rating.item_id, set()):
            raise ValueError(f"review {review_id} has no output {rating.slot!r} for item {rating.item_id!r}")
    for reviewer in sorted({r.reviewer for r in ratings}):
        merged = {(r.item_id, r.slot): r for r in _reviewer_ratings(store, user_id, review_id, reviewer)}
        merged |= {(r.item_id, r.slot): r for r in ratings if r.reviewer == reviewer}
        rows = [r.model_dump(mode="json") for _, r in sorted(merged.items())]
        _put_json(store, _key(user_id, review_id, f"{RATINGS}{reviewer}.json"), rows)
    return len(ratings)


def summarize_review(store: ObjectStore, *, user_id: str, review_id: str) -> ReviewSummary:
    """Per-model rating counts and means (models revealed), and Krippendorff's alpha per criterion."""
    mapping = json.loads(get_bytes(store, _key(user_id, review_id, MAPPING)))
    prefix = _key(user_id, review_id, RATINGS)
    ratings = [
        Rating.model_validate(row) for info in store.list(prefix) for row in json.loads(get_bytes(store, info.key))
    ]
    by_model: dict[str, list[Rating]] = {label: [] for label in mapping["models"]}
    for rating in ratings:
        by_model[mapping["items"][rating.item_id]["slots"][rating.slot]].append(rating)
    models = [
        ModelReviewSummary(
            model=label,
            ratings=len(rs),
            reviewers=len({r.reviewer for r in rs}),
            mean={c: mean(getattr(r, c) for r in rs) for c in CRITERIA} if rs else {},
        )
        for label, rs in by_model.items()
    ]
    units: dict[tuple[str, str], list[Rating]] = {}
    for rating in ratings:
        units.setdefault((rating.item_id, rating.slot), []).append(rating)
    agreement = {
        c: krippendorff_alpha_interval([[float(getattr(r, c)) for r in rs] for rs in units.values()]) for c in CRITERIA
    }
    summary = ReviewSummary(review_id=review_id, models=models, agreement=agreement)
    _put_json(store, _key(user_id, review_id, "summary.json"), summary.model_dump(mode="json"))
    return summary
