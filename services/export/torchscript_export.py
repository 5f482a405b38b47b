"""TorchScript export of the merged model's logits (no cache: TorchScript cannot carry transformers' cache)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from shared.schemas.export import VerificationCheck

from .verify import close_check, same_tokens_check

LOGITS_TOLERANCE = 1e-5


def _logits_only(model: Any) -> Any:
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any) -> Any:
            return self.model(input_ids=input_ids, use_cache=False).logits

    return LogitsOnly().eval()


def export_torchscript(model: Any, out: Path) -> Path:
    """Trace `ids (batch x seq) -> logits` and save `out/model.pt`."""
    import torch

    path = out / "model.pt"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape branches: checked on other lengths below
        traced = torch.jit.trace(_logits_only(model), torch.ones(1, 4, dtype=torch.long), check_trace=False)
    torch.jit.save(traced, str(path))
    return path


def _greedy(module: Any, ids: Any, max_new_tokens: int) -> list[int]:
    import torch

    seq = ids
    with torch.no_grad():
        for _ in range(max_new_tokens):
            nxt = module(seq)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    return seq[0, ids.shape[1] :].tolist()


def check_torchscript(
    path: Path, expected_logits: list[Any], inputs: list[Any], expected_tokens: list[list[int]], max_new_tokens: int
) -> list[VerificationCheck]:
    """Reload `model.pt` and compare logits (on lengths other than the traced one) and greedy tokens."""
    import torch

    module = torch.jit.load(str(path))
    with torch.no_grad():
        worst = max(float((want - module(ids)).abs().max()) for want, ids in zip(expected_logits, inputs, strict=True))
    generated = [_greedy(module, ids, max_new_tokens) for ids in inputs]
    return [
        close_check("torchscript_logits", worst, LOGITS_TOLERANCE, "max |logits| difference vs the merged model"),
        same_tokens_check("torchscript_greedy_generation", expected_tokens, generated, "greedy tokens, full recompute"),
    ]
