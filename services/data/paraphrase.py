"""Model paraphrases of a conversation's first user turn: which records to ask about, and which answers to keep.

Three tasks of one chain share these rules: `data.plan_paraphrases` writes a request per picked record
and paraphrase, `inference.generate` answers them, and `data.prepare` adds each usable answer as a variant.
A request id is the record's content hash plus the paraphrase number, so the planner and the preparer
agree on it without sharing state, and an answer can never land on another record.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from shared.schemas.datasets import PARAPHRASE_RESPONSES_NAME, AugmentConfig
from shared.schemas.generation import ChatTurn, GenerationRequest, GenerationResponse
from shared.storage import ObjectKind, ObjectNotFoundError, ObjectStore, get_bytes, object_key

from .converters import Record
from .readers import Location
from .validation import ReportBuilder

REJECTIONS = {
    "error": "the model could not generate it",
    "truncated": "it was cut at paraphrase_max_new_tokens",
    "empty": "it is empty",
    "identical": "it repeats the original",
    "duplicate": "it repeats an earlier paraphrase of the record",
    "missing": "no response has its id (responses from another plan?)",
}


@dataclass(frozen=True)
class Paraphrases:
    """A job's generated paraphrases by request id, and the hash of the responses object."""

    responses: dict[str, GenerationResponse]
    sha256: str


def record_key(record: Record) -> str:
    """A content hash of a record, stable across runs and machines."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def request_id(key: str, number: int) -> str:
    """The id of paraphrase `number` of the record with content hash `key`: planner and preparer both derive it."""
    return f"{key}-{number}"


def is_picked(key: str, fraction: float, seed: int) -> bool:
    """Whether the record with `key` is paraphrased: a seeded choice that depends on its content only."""
    if fraction >= 1:
        return True
    draw = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 2**32
    return draw < fraction


def picked_turn(record: Record, config: AugmentConfig, seed: int) -> tuple[str, int] | None:
    """(record key, index of its first user turn) when the record is to be paraphrased, else None.

    Only conversations are paraphrased; text and preference records never are.
    """
    if "messages" not in record or "chosen" in record:
        return None
    index = next((i for i, m in enumerate(record["messages"]) if m["role"] == "user"), None)
    if index is None:
        return None
    key = record_key(record)
    return (key, index) if is_picked(key, config.paraphrase_fraction, seed) else None


def paraphrase_requests(record: Record, config: AugmentConfig, seed: int) -> list[GenerationRequest]:
    """The requests for one record: `config.paraphrases` of them if it is picked, else none."""
    picked = picked_turn(record, config, seed)
    if picked is None:
        return []
    key, index = picked
    # str.replace, not str.format: instructions often contain braces (code, JSON).
    ask = config.paraphrase_prompt.replace("{instruction}", record["messages"][index]["content"])
    return [
        GenerationRequest(id=request_id(key, k), messages=[ChatTurn(role="user", content=ask)])
        for k in range(config.paraphrases)
    ]


def load_paraphrases(store: ObjectStore, user_id: str, job_id: str | None) -> Paraphrases:
    """Read the job's responses from `users/{user}/jobs/{job_id}/paraphrase/responses.jsonl`.

    Raises:
        ValueError: no job id (paraphrases belong to a job's chain).
        FileNotFoundError: the responses are not there yet; the message says how to make them.
    """
    how = (
        "run data.plan_paraphrases and inference.generate for this job before data.prepare "
        "(`tuneflow train` and `tuneflow data prepare` chain them when augment.paraphrase_model is set)"
    )
    if job_id is None:
        raise ValueError(f"augment.paraphrase_model: paraphrases are made inside a job; {how}")
    key = object_key(user_id, ObjectKind.JOBS, job_id, PARAPHRASE_RESPONSES_NAME)
    try:
        raw = get_bytes(store, key)
    except ObjectNotFoundError:
        raise FileNotFoundError(f"the paraphrase responses {key!r} are missing: {how}") from None
    responses = {}
    for line in raw.decode("utf-8").splitlines():
        if line.strip():
            response = GenerationResponse.model_validate_json(line)
            responses[response.id] = response
    return Paraphrases(responses, hashlib.sha256(raw).hexdigest())


def rejection(response: GenerationResponse | None, original: str, kept: list[str]) -> str | None:
    """Why a paraphrase is unusable (a key of REJECTIONS), or None to keep it."""
    if response is None:
        return "missing"
    if response.finish_reason == "error":
        return "error"
    if response.finish_reason == "length":
        return "truncated"
    text = response.text.strip()
    if not text:
        return "empty"
    if _comparable(text) == _comparable(original):
        return "identical"
    if text in kept:
        return "duplicate"
    return None


def _comparable(text: str) -> str:
    return " ".join(text.split()).casefold()


def paraphrase_variants(
    loc: Location, record: Record, paraphrases: Paraphrases, config: AugmentConfig, seed: int, builder: ReportBuilder
) -> Iterator[Record]:
    """The record with its first user turn replaced by each usable paraphrase; rejects are reported."""
    picked = picked_turn(record, config, seed)
    if picked is None:
        return
    key, index = picked
    original = record["messages"][index]["content"]
    kept: list[str] = []
    for k in range(config.paraphrases):
        asked = request_id(key, k)
        reason = rejection(paraphrases.responses.get(asked), original, kept)
        if reason is not None:
            why = f"paraphrase {asked} dropped: {REJECTIONS[reason]}"
            builder.reject_paraphrase(loc.problem(f"paraphrase_{reason}", why, f"messages[{index}].content"), reason)
            continue
        text = paraphrases.responses[asked].text.strip()
        kept.append(text)
        variant = copy.deepcopy(record)
        variant["messages"][index]["content"] = text
        builder.report.paraphrased += 1
        builder.report.augmented += 1
        yield variant
