"""Starting the training process and waiting for it: exit status, the parent-death guard.

Training never runs inside the Celery worker process: CUDA cannot be initialised again in a forked
process, and a crash (or the OOM killer) must not take the worker down. The child is a fresh
interpreter (`python -m services.training.child`, or `torchrun` for several processes).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

from .recipe import RunSpec

LOG_TAIL_CHARS = 4000
_PR_SET_PDEATHSIG = 1


class TrainingProcessError(RuntimeError):
    """The training process exited without finishing; the message carries the end of its log."""


def command(spec_path: Path, num_processes: int) -> list[str]:
    """The command line that runs the recipe in `num_processes` data-parallel processes."""
    module = ["-m", "services.training.child", str(spec_path)]
    if num_processes == 1:
        return [sys.executable, *module]
    # --standalone: a private rendezvous on a free port; gloo on CPU and NCCL on GPU are chosen by accelerate.
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={num_processes}", *module]


def run_training_process(spec: RunSpec, num_processes: int) -> None:
    """Run the recipe in a child process and wait for it to exit (the job's lease is renewed meanwhile by the caller).

    Raises:
        TrainingProcessError: the child exited non-zero (its log tail is in the message).
    """
    workdir = Path(spec.workdir)
    spec_path = workdir / "spec.json"
    spec_path.write_text(spec.model_dump_json())
    log_path = workdir / "train.log"
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // num_processes))}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command(spec_path, num_processes),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        code = proc.wait()
    if code != 0:
        tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        raise TrainingProcessError(f"training process exited with code {code}:\n{tail}")


def _die_with_parent() -> None:
    # If the worker is SIGKILLed, the kernel kills the child too: no orphan keeps training (or writing).
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
