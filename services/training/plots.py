"""The loss-curve PNG written at the end of every job."""

from __future__ import annotations

import json
from pathlib import Path


def read_log(path: Path) -> list[dict]:
    """The training records of a trainer_log.jsonl (evaluation lines have no `loss`)."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in lines if "loss" in r]


def plot_loss(log_path: Path, out: Path) -> Path | None:
    """Plot loss against step (with eval loss if logged) into `out`; None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")  # workers have no display
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    if not records:
        return None
    evals = [json.loads(x) for x in log_path.read_text().splitlines() if '"eval_loss"' in x]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot([r["step"] for r in records], [r["loss"] for r in records], label="train loss")
    if evals:
        ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
