"""`tuneflow serve`: the interface `tuneflow dev up` relies on, and its argument checks."""

from __future__ import annotations

from typer.testing import CliRunner

from tuneflow.cli import app


def test_serve_offers_the_options_dev_up_uses() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--model", "--host", "--port", "--adapter", "--api-key", "--platform", "--max-batch-size"):
        assert option in result.output


def test_serve_rejects_an_adapter_without_a_path() -> None:
    result = CliRunner().invoke(app, ["serve", "--model", "m", "--adapter", "just-a-name"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "NAME=PATH" in result.output


def test_serve_rejects_invalid_limits() -> None:
    result = CliRunner().invoke(app, ["serve", "--model", "m", "--max-batch-size", "0"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "max_batch_size" in result.output
