"""Entry point of the training process: `python -m services.training.child SPEC.json` (or under torchrun)."""

from __future__ import annotations

import sys
from pathlib import Path


def main(spec_path: str) -> None:
    """Run the recipe for the spec in `spec_path`."""
    from .recipe import RunSpec, train

    train(RunSpec.model_validate_json(Path(spec_path).read_text()))


if __name__ == "__main__":
    main(sys.argv[1])
