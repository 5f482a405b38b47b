"""The task steps that prepare a job's dataset: with a paraphrase model, planning and generation come first."""

from __future__ import annotations

from shared.queue import TaskName
from shared.schemas import TaskPayload
from shared.schemas.datasets import PARAPHRASE_REQUESTS_NAME, PARAPHRASE_RESPONSES_NAME, PrepareConfig
from shared.schemas.generation import GenerateConfig
from shared.storage import ObjectKind, object_key


def prepare_steps(config: PrepareConfig, *, job_id: str, user_id: str) -> list[tuple[TaskName, TaskPayload]]:
    """`data.prepare`, preceded by `data.plan_paraphrases` and `inference.generate` when paraphrasing.

    The steps pass nothing to each other: each reads what the one before wrote at the job's fixed keys,
    so the list runs the same through `send_chain` in embedded (eager) and distributed mode.
    """
    prepare = TaskPayload(job_id=job_id, user_id=user_id, config=config.model_dump(mode="json"))
    augment = config.augment
    if augment is None or augment.paraphrase_model is None:
        return [(TaskName.DATA_PREPARE, prepare)]
    generate = GenerateConfig(
        model=augment.paraphrase_model,
        adapter=augment.paraphrase_adapter,
        requests_key=object_key(user_id, ObjectKind.JOBS, job_id, PARAPHRASE_REQUESTS_NAME),
        responses_name=PARAPHRASE_RESPONSES_NAME,
        max_new_tokens=augment.paraphrase_max_new_tokens,
        temperature=augment.paraphrase_temperature,
        top_p=augment.paraphrase_top_p,
        seed=config.seed,
    )
    return [
        (TaskName.DATA_PLAN_PARAPHRASES, prepare),
        (TaskName.INFERENCE_GENERATE, TaskPayload(job_id=job_id, user_id=user_id, config=generate.model_dump())),
        (TaskName.DATA_PREPARE, prepare),
    ]
