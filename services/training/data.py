"""Reading the data service's prepared Parquet splits and batching them, padded or padding-free.

The data service owns tokenization: rows arrive as `input_ids` and `labels` (-100 where no loss is taken),
plus `position_ids` when it packed several samples into one row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IGNORE_INDEX = -100
TRAIN_SPLIT = "train"


def load_splits(dataset_dir: Path) -> dict[str, Any]:
    """`{split: datasets.Dataset}` for the manifest and Parquet files downloaded into `dataset_dir`."""
    import datasets
    import pyarrow.parquet as pq

    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    splits = {}
    for name, key in manifest["splits"].items():
        table = pq.read_table(dataset_dir / Path(key).name)
        keep = [c for c in ("input_ids", "labels", "position_ids") if c in table.column_names]
        splits[name] = datasets.Dataset(table.select(keep))
    if TRAIN_SPLIT not in splits:
        raise ValueError(f"prepared dataset has no {TRAIN_SPLIT!r} split (found {sorted(splits)})")
    return splits


def eval_split(splits: dict[str, Any]) -> Any | None:
    """The held-out split, whatever the data service called it."""
    return next((ds for name, ds in splits.items() if name != TRAIN_SPLIT), None)


@dataclass
class PaddedCollator:
    """Right-pads a batch to its longest row; pads are masked out of attention and loss."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            input_ids[row, :n] = torch.as_tensor(f["input_ids"])
            labels[row, :n] = torch.as_tensor(f["labels"])
            attention_mask[row, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


@dataclass
class PaddingFreeCollator:
    """Concatenates the whole batch into one row, with position ids restarting at every sample.

    transformers reads sample boundaries from where `position_ids` restart and builds a block-diagonal
    causal mask, so no token attends across samples; no pad token is computed at all. Rows the data
    service already packed carry their own `position_ids` and are handled the same way.

    The output head runs only where a loss is taken (`logits_to_keep`, with pre-shifted `shift_labels`):
    in SFT the prompt tokens need no logits, and the head is a large share of a small model's compute.
    """

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids, labels, positions = [], [], []
        for f in features:
            n = len(f["input_ids"])
            ids.append(torch.as_tensor(f["input_ids"]))
            labels.append(torch.as_tensor(f["labels"]))
            positions.append(
                torch.as_tensor(f["position_ids"]) if f.get("position_ids") is not None else torch.arange(n)
            )
        position_ids = torch.cat(positions).long()
        flat_labels = torch.cat(labels).long()
        # The first token of each sample must not be predicted from the previous sample's last token.
        flat_labels[position_ids == 0] = IGNORE_INDEX
        shifted = torch.cat([flat_labels[1:], torch.tensor([IGNORE_INDEX])])  # the target of each position
        keep = shifted != IGNORE_INDEX
        return {
            "input_ids": torch.cat(ids).long()[None],
            "labels": flat_labels[None],
            "position_ids": position_ids[None],
            "logits_to_keep": keep[None],
            "shift_labels": shifted[keep][None],
        }
