"""Per-sequence sampling inside one batch: each row keeps its own temperature, top-p and seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    """How one sequence is decoded."""

    max_tokens: int
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A private random stream, so one request's seed is unaffected by what else shares its batch."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def next_tokens(logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator]) -> list[int]:
    """Pick each row's next token from its last-position `logits` (rows x vocab).

    Generators must live on `logits`' device (see `make_generator`).
    """
    chosen = logits.argmax(dim=-1)
    sampled = [i for i, p in enumerate(params) if p.temperature > 0]
    if sampled:
        device = logits.device
        rows = torch.tensor(sampled, device=device)
        temps = torch.tensor([params[i].temperature for i in sampled], dtype=logits.dtype, device=device)
        probs = torch.softmax(logits[rows] / temps[:, None], dim=-1)
        top_p = torch.tensor([params[i].top_p for i in sampled], dtype=probs.dtype, device=device)
        if bool((top_p < 1).any()):
            probs = _nucleus(probs, top_p)
        for j, i in enumerate(sampled):
            chosen[i] = torch.multinomial(probs[j], 1, generator=generators[i])[0]
    return chosen.tolist()


def _nucleus(probs: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Zero every token outside each row's smallest set whose mass reaches its `top_p`."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    sorted_probs[mass_before >= top_p[:, None]] = 0  # the top token always survives: its mass_before is 0
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs)
