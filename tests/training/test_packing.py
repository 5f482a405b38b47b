"""Padding-free packing: a packed row gives each sample exactly the logits it gets alone (no attention leak)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from services.training.data import IGNORE_INDEX, PaddedCollator, PaddingFreeCollator


@pytest.mark.parametrize("attention", ["sdpa", "packed"])
def test_packed_logits_match_separate_forward(tiny_model_dir: Path, attention: str) -> None:
    from transformers import AutoModelForCausalLM

    from services.training.attention import register

    implementation = register() if attention == "packed" else attention
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=implementation).eval()
    # As in training (methods._common): with a KV cache, transformers does not read packing from position ids.
    model.config.use_cache = False
    torch.manual_seed(0)
    samples = [torch.randint(10, 500, (n,)).tolist() for n in (7, 12, 5)]
    features = [{"input_ids": s, "labels": s} for s in samples]

    batch = PaddingFreeCollator()(features)
    assert batch["input_ids"].shape == (1, 24) and "attention_mask" not in batch
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        alone = [model(input_ids=torch.tensor([s])).logits[0] for s in samples]
    torch.testing.assert_close(packed, torch.cat(alone), atol=1e-5, rtol=1e-4)

    # Without sample boundaries the same row does leak: the check above is not vacuous.
    with torch.no_grad():
        leaky = model(input_ids=batch["input_ids"], position_ids=torch.arange(24)[None]).logits[0]
    assert (leaky[7:] - torch.cat(alone)[7:]).abs().max() > 1e-3


def test_sample_boundaries_take_no_loss() -> None:
    features = [{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4, 5], "labels": [4, 5]}]
    batch = PaddingFreeCollator()(features)
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    # The second sample's first token would be predicted from the first sample's last: masked.
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5]]
    # Logits only where a target exists: positions 0, 1 (-> 2, 3) and 3 (-> 5).
    assert batch["logits_to_keep"].tolist() == [[True, True, False, True, False]]
    assert batch["shift_labels"].tolist() == [[2, 3, 5]]


def test_trimmed_head_gives_the_same_loss_and_gradients(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.config.use_cache = False
    torch.manual_seed(0)
    features = []
    for n, prompt in ((9, 4), (6, 2), (11, 7)):
        ids = torch.randint(10, 500, (n,)).tolist()
        features.append({"input_ids": ids, "labels": [IGNORE_INDEX] * prompt + ids[prompt:]})
    batch = PaddingFreeCollator()(features)
    trimmed = model(**batch).loss
    trimmed.backward()
    grad = model.model.layers[0].self_attn.q_proj.weight.grad.clone()
    model.zero_grad()
    full = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], labels=batch["labels"]).loss
    full.backward()
    torch.testing.assert_close(trimmed, full)
    torch.testing.assert_close(grad, model.model.layers[0].self_attn.q_proj.weight.grad)


def test_padded_collator_masks_pads() -> None:
    batch = PaddedCollator(pad_token_id=0)(
        [{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]
