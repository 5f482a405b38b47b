"""Embedded mode runs every service's task in-process through the same `send_task` call."""

from sqlalchemy import select

from shared.db import Job, JobEvent, session_scope
from shared.events import emit_status
from shared.queue import Queue, TaskName, queue_for, send_task
from shared.schemas import JobStatus


def test_every_service_answers_a_ping_in_process(embedded):
    services = [q for q in Queue if q is not Queue.EVENTS]
    for queue in services:
        result = send_task(f"{queue.value}.ping", {"job_id": "health-1", "message": "hello"})
        assert result.get()["service"] == queue.value
    with session_scope() as s:
        messages = s.scalars(select(JobEvent.message).where(JobEvent.job_id == "health-1")).all()
    assert sorted(m.split(" ")[2] for m in messages) == sorted(q.value for q in services)


def test_status_events_move_the_job_and_never_revive_a_finished_one(embedded):
    with session_scope() as s:
        s.add(Job(id="job-1", user_id=_user(s), kind="training", status="queued"))
    emit_status("job-1", JobStatus.RUNNING)
    emit_status("job-1", JobStatus.SUCCEEDED, fine_tuned_model="ft:tiny:alice:job-1")
    emit_status("job-1", JobStatus.RUNNING)  # late, out-of-order redelivery
    with session_scope() as s:
        job = s.get(Job, "job-1")
        assert (job.status, job.attempts, job.fine_tuned_model) == ("succeeded", 1, "ft:tiny:alice:job-1")
        assert job.started_at is not None and job.finished_at is not None


def test_task_names_route_to_their_service_queue():
    assert {queue_for(name) for name in TaskName} == set(Queue)
    assert queue_for(TaskName.TRAINING_RUN) is Queue.TRAINING


def _user(session) -> str:
    from shared.db import User

    session.add(User(id="alice", email="alice@example.com"))
    session.flush()
    return "alice"
