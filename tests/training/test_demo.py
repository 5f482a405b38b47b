"""`tuneflow demo` (what `make demo` runs) end to end, shortened."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.mark.slow
def test_demo_runs_and_reports_before_and_after(embedded: Path) -> None:
    from tuneflow.cli import app

    result = CliRunner().invoke(app, ["demo", "--home", str(embedded), "--max-steps", "60"])
    assert result.exit_code == 0, result.output
    assert "correct: 0/12 before" in result.output
    start, end = map(float, re.search(r"loss: ([\d.]+) at step \d+ -> ([\d.]+) at step 60", result.output).groups())
    assert end < start - 3.0
    assert "final/ (LoRA adapter + tokenizer)" in result.output
