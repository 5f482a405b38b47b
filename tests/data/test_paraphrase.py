"""Model paraphrasing, the data service's half: planned requests, merging the responses, the chain's steps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.data.chain import prepare_steps
from services.data.paraphrase_plan import plan_paraphrases
from services.data.prepare import prepare_dataset
from shared.queue import TaskName
from shared.schemas.datasets import DEFAULT_PARAPHRASE_PROMPT, AugmentConfig, PrepareConfig
from shared.storage import ObjectStore, get_bytes, put_bytes

INSTRUCTIONS = ["Say hi", "Name a colour.", "What is 2+2?", "Spell cat", "Count to three", "Greet Bob"]
REQUESTS_KEY = "users/alice/jobs/job-p/paraphrase/requests.jsonl"
RESPONSES_KEY = "users/alice/jobs/job-p/paraphrase/responses.jsonl"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def write_dataset(folder: Path, instructions: list[str] = INSTRUCTIONS) -> Path:
    """An alpaca dataset `tiny` of the instructions, plus a duplicate (removed) and an invalid record (dropped)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"instruction": q, "input": "", "output": f"The answer to {q}"} for q in instructions]
    rows += [rows[0], {"instruction": "no output"}]
    (folder / "tiny.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "dataset_info.json").write_text(json.dumps({"tiny": {"file_name": "tiny.jsonl"}}))
    return folder


def _config(folder: Path, model: str = "tokenizer-not-needed", **augment: object) -> PrepareConfig:
    return PrepareConfig(
        model_name_or_path=model,
        dataset="tiny",
        dataset_dir=str(folder),
        augment={"paraphrase_model": "some-model", **augment},
    )


def _plan(store: ObjectStore, config: PrepareConfig) -> list[dict]:
    key, count = plan_paraphrases(config, store=store, user_id="alice", job_id="job-p")
    assert key == REQUESTS_KEY
    lines = [json.loads(line) for line in get_bytes(store, key).decode().splitlines()]
    assert len(lines) == count
    return lines


def test_requests_ask_once_per_valid_record_and_paraphrase_with_stable_ids(store: ObjectStore, tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "data")
    requests = _plan(store, _config(folder, paraphrases=2))

    assert len(requests) == 2 * len(INSTRUCTIONS)  # the duplicate is asked about once, the invalid record never
    first = get_bytes(store, REQUESTS_KEY)
    asked = [r["messages"] for r in requests]
    expected = [DEFAULT_PARAPHRASE_PROMPT.replace("{instruction}", q) for q in INSTRUCTIONS for _ in range(2)]
    assert asked == [[{"role": "user", "content": text}] for text in expected]
    ids = [r["id"] for r in requests]
    assert all(re.fullmatch(r"[0-9a-f]{20}-[01]", i) for i in ids) and len(set(ids)) == len(ids)
    assert [i[:20] for i in ids[::2]] == [i[:20] for i in ids[1::2]]  # both paraphrases of a record share its key

    assert _plan(store, _config(folder, paraphrases=2)) == requests
    assert get_bytes(store, REQUESTS_KEY) == first  # byte for byte
    # Ids hang on a record's content, not its position: a record added in front changes no other id.
    write_dataset(folder, ["A new first one", *INSTRUCTIONS])
    assert [r["id"] for r in _plan(store, _config(folder, paraphrases=2))][2:] == ids


def test_a_fraction_picks_records_by_seed_and_content(store: ObjectStore, tmp_path: Path) -> None:
    questions = [f"Question number {n}" for n in range(40)]
    folder = write_dataset(tmp_path / "data", questions)

    def picked(seed: int, prompt: str = DEFAULT_PARAPHRASE_PROMPT) -> list[str]:
        config = _config(folder, paraphrase_fraction=0.5, paraphrase_prompt=prompt).model_copy(update={"seed": seed})
        return [r["messages"][0]["content"] for r in _plan(store, config)]

    first = picked(1)
    assert first == picked(1)
    assert 10 <= len(first) <= 30  # about half of 40
    assert picked(2) != first
    write_dataset(folder, questions[::-1])  # the same records in another order: the same ones are picked
    assert sorted(picked(1)) == sorted(first)
    custom = picked(1, "Say it differently: {instruction}")
    assert custom == [
        text.replace(DEFAULT_PARAPHRASE_PROMPT.removesuffix("{instruction}"), "Say it differently: ")
        for text in picked(1)
    ]


def _respond(store: ObjectStore, requests: list[dict], answers: list[tuple[str, str] | None]) -> None:
    """Write the job's responses: (text, finish_reason) per request, None to leave one out."""
    lines = [
        json.dumps({"id": r["id"], "text": text, "finish_reason": reason})
        for r, answer in zip(requests, answers, strict=True)
        if answer is not None
        for text, reason in [answer]
    ]
    put_bytes(store, RESPONSES_KEY, "".join(line + "\n" for line in lines).encode())


ANSWERS: list[tuple[str, str] | None] = [
    ("Please say hello", "stop"),  # record 0: kept
    ("Please say hello", "stop"),  # duplicate of the one before
    ("  ", "stop"),  # record 1: empty
    ("  name a   COLOUR. ", "stop"),  # the original again, up to case and spaces
    ("What do two and two", "length"),  # record 2: cut at max_new_tokens
    ("", "error"),  # could not be generated
    ("Write out c-a-t", "stop"),  # record 3: both kept
    ("Spell the word cat", "stop"),
    None,  # record 4: no response for this id
    ("Count up to 3", "stop"),
    ("Say hello to Bob", "stop"),  # record 5: both kept
    ("Bob needs a greeting", "stop"),
]


def test_merging_adds_exactly_the_usable_paraphrases_and_reports_the_rest(
    store: ObjectStore, tmp_path: Path, tiny_model_dir: Path
) -> None:
    folder = write_dataset(tmp_path / "data")
    config = _config(folder, model=str(tiny_model_dir), paraphrases=2)
    requests = _plan(store, config)
    _respond(store, requests, ANSWERS)

    manifest = prepare_dataset(config, store=store, user_id="alice", job_id="job-p")

    report = manifest.report
    assert report.paraphrased == report.augmented == 6
    assert report.paraphrases_dropped == {
        "duplicate": 1,
        "empty": 1,
        "identical": 1,
        "truncated": 1,
        "error": 1,
        "missing": 1,
    }
    assert report.records_written == len(INSTRUCTIONS) + 6
    records = [json.loads(line) for line in get_bytes(store, manifest.records["train"]).decode().splitlines()]
    firsts = [r["messages"][0]["content"] for r in records]
    assert firsts == [
        "Say hi",
        "Please say hello",
        "Name a colour.",
        "What is 2+2?",
        "Spell cat",
        "Write out c-a-t",
        "Spell the word cat",
        "Count to three",
        "Count up to 3",
        "Greet Bob",
        "Say hello to Bob",
        "Bob needs a greeting",
    ]
    assert records[1]["messages"][1] == records[0]["messages"][1]  # a paraphrase keeps the answer
    truncated = next(p for p in report.problems if p.code == "paraphrase_truncated")
    assert (truncated.file, truncated.line, truncated.field) == ("tiny.jsonl", 3, "messages[0].content")
    assert "cut at paraphrase_max_new_tokens" in truncated.reason

    again = prepare_dataset(config, store=store, user_id="alice", job_id="job-p")
    assert again.dataset_id == manifest.dataset_id  # same paraphrases: the stored dataset is reused
    changed = list(ANSWERS)
    changed[0] = ("Kindly say hello", "stop")
    _respond(store, requests, changed)
    other = prepare_dataset(config, store=store, user_id="alice", job_id="job-p")
    assert other.dataset_id != manifest.dataset_id
    plain = prepare_dataset(config.model_copy(update={"augment": None}), store=store, user_id="alice")
    assert plain.dataset_id not in (manifest.dataset_id, other.dataset_id)
    assert plain.report.records_written == len(INSTRUCTIONS)


def test_missing_responses_say_what_is_missing_and_how_to_make_them(
    store: ObjectStore, tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = _config(write_dataset(tmp_path / "data"), model=str(tiny_model_dir))
    with pytest.raises(FileNotFoundError) as missing:
        prepare_dataset(config, store=store, user_id="alice", job_id="job-none")
    message = str(missing.value)
    assert "users/alice/jobs/job-none/paraphrase/responses.jsonl" in message and "missing" in message
    assert "run data.plan_paraphrases and inference.generate for this job before data.prepare" in message
    with pytest.raises(ValueError, match="augment.paraphrase_model: paraphrases are made inside a job"):
        prepare_dataset(config, store=store, user_id="alice")


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        ({"paraphrase_adapter": "ft:tiny:alice:ftjob-1"}, "paraphrase_adapter: set paraphrase_model too"),
        ({"paraphrases": 3}, "paraphrases: set paraphrase_model too"),
        ({"paraphrase_model": "m", "paraphrases": 2, "paraphrase_temperature": 0}, "paraphrase_temperature: with"),
        ({"paraphrase_model": "m", "paraphrase_prompt": "Rephrase:"}, "paraphrase_prompt lacks the `{instruction}`"),
        ({"paraphrase_model": "m", "paraphrase_fraction": 0}, "paraphrase_fraction"),
        ({"paraphrase_modle": "m"}, "paraphrase_modle"),
    ],
)
def test_paraphrase_options_are_checked_naming_the_field(augment: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        AugmentConfig.model_validate(augment)


def test_only_sft_data_is_paraphrased() -> None:
    with pytest.raises(ValidationError, match="augment.paraphrase_model: only sft conversations are paraphrased"):
        PrepareConfig(model_name_or_path="m", dataset="d", stage="dpo", augment={"paraphrase_model": "m"})


def test_the_chain_gets_planning_and_generation_only_when_paraphrasing(tmp_path: Path) -> None:
    plain = PrepareConfig(model_name_or_path="m", dataset="tiny", dataset_dir="store://users/alice/uploads/u1/")
    assert [name for name, _ in prepare_steps(plain, job_id="job-1", user_id="alice")] == [TaskName.DATA_PREPARE]

    augment = AugmentConfig(
        paraphrase_model="ft:tiny:alice:ftjob-9", paraphrases=2, paraphrase_temperature=0.5, paraphrase_top_p=0.8
    )
    steps = prepare_steps(plain.model_copy(update={"augment": augment, "seed": 7}), job_id="job-1", user_id="alice")

    names = [name for name, _ in steps]
    assert names == [TaskName.DATA_PLAN_PARAPHRASES, TaskName.INFERENCE_GENERATE, TaskName.DATA_PREPARE]
    assert steps[0][1] == steps[2][1]  # planning reads the data exactly as preparing will
    generate = steps[1][1].config
    assert generate["requests_key"] == "users/alice/jobs/job-1/paraphrase/requests.jsonl"
    assert generate["responses_name"] == "paraphrase/responses.jsonl"
    assert (generate["model"], generate["adapter"]) == ("ft:tiny:alice:ftjob-9", None)
    assert (generate["temperature"], generate["top_p"], generate["seed"]) == (0.5, 0.8, 7)


def test_the_documented_yaml_example_validates(tmp_path: Path) -> None:
    from shared.config_files import load_config
    from tuneflow.train_cmd import split_config

    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.S)
    (example,) = [b for b in blocks if "paraphrase_model" in b]
    (tmp_path / "example.yaml").write_text(example)
    prepare, _ = split_config(load_config(tmp_path / "example.yaml"))
    assert prepare.augment is not None and prepare.augment.paraphrasing


def _job(kind: str) -> dict:
    """The only job of `kind`: id, status, error and event messages."""
    from shared.db import Job, JobEvent, session_scope

    with session_scope() as session:
        job = session.query(Job).filter_by(kind=kind).one()
        events = session.query(JobEvent).filter_by(job_id=job.id).order_by(JobEvent.created_at)
        return {"id": job.id, "status": job.status, "error": job.error, "events": [e.message for e in events]}


def test_tuneflow_data_prepare_runs_the_paraphrase_chain_embedded(
    embedded: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    import yaml
    from typer.testing import CliRunner

    from shared.storage import get_store
    from tests.inference.adapters import train_fixed_reply_adapter
    from tests.infra import one_torch_thread
    from tuneflow.cli import app

    # A random-init model writes junk that never ends; an adapter that answers "apple" gives usable paraphrases.
    asked = [f"Rephrase: {q}" for q in INSTRUCTIONS]
    with one_torch_thread():
        adapter = train_fixed_reply_adapter(tiny_model_dir, "apple", tmp_path / "apple", prompts=asked)
    augment = {
        "paraphrase_model": str(tiny_model_dir),
        "paraphrase_adapter": str(adapter),
        "paraphrase_prompt": "Rephrase: {instruction}",
        "paraphrase_temperature": 0,
        "paraphrase_max_new_tokens": 8,
    }
    folder = write_dataset(tmp_path / "data")
    config = tmp_path / "data.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_name_or_path": str(tiny_model_dir),
                "dataset": "tiny",
                "dataset_dir": str(folder),
                "augment": augment,
            }
        )
    )

    with one_torch_thread():
        result = CliRunner().invoke(app, ["data", "prepare", "--config", str(config)])

    assert result.exit_code == 0, result.output
    store = get_store()
    dataset_id = json.loads(result.stdout)["dataset_id"]
    manifest = json.loads(get_bytes(store, f"users/local/datasets/{dataset_id}/manifest.json"))
    assert manifest["report"]["paraphrased"] == manifest["report"]["augmented"] == len(INSTRUCTIONS)
    records = [json.loads(line) for line in get_bytes(store, manifest["records"]["train"]).decode().splitlines()]
    assert [r["messages"][0]["content"] for r in records] == [t for q in INSTRUCTIONS for t in (q, "apple")]
    job = _job("data")
    assert job["status"] == "succeeded"
    assert {"planned 6 paraphrase requests", "generated 6 responses"} <= set(job["events"])
    responses = get_bytes(store, f"users/local/jobs/{job['id']}/paraphrase/responses.jsonl").decode().splitlines()
    assert [json.loads(line)["text"] for line in responses] == ["apple"] * len(INSTRUCTIONS)


def test_the_prepare_task_without_responses_fails_the_job_saying_what_is_missing(
    embedded: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    from services.data.sources import upload_dataset_folder
    from shared.db import session_scope
    from shared.db.jobs import create_job, ensure_user
    from shared.queue import send_task
    from shared.schemas import JobKind, TaskPayload
    from shared.storage import get_store

    prefix = upload_dataset_folder(get_store(), "local", write_dataset(tmp_path / "data"), ["tiny"])
    config = _config(Path("unused"), model=str(tiny_model_dir)).model_copy(update={"dataset_dir": prefix})
    with session_scope() as session:
        ensure_user(session, "local")
        job_id = create_job(session, user_id="local", kind=JobKind.DATA, config={}).id

    with pytest.raises(FileNotFoundError, match="paraphrase/responses.jsonl' are missing"):
        send_task(TaskName.DATA_PREPARE, TaskPayload(job_id=job_id, user_id="local", config=config.model_dump()))

    job = _job("data")
    assert job["status"] == "failed"
    assert "run data.plan_paraphrases and inference.generate for this job" in job["error"]["message"]
