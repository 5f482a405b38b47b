"""Perplexity, multiple-choice accuracy and generation equal direct computations on the tiny model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from services.evaluation.generation import GenerationSettings, cut_at_stop_words, generate
from services.evaluation.metrics.multiple_choice import (
    build_messages,
    parse_questions,
    pick_shots,
    score_multiple_choice,
)
from services.evaluation.metrics.perplexity import perplexity, response_sequences, text_sequences

from .conftest import DATA


def _logprobs(model: Any, ids: list[int]) -> torch.Tensor:
    """log p(ids[t] | ids[:t]) for t >= 1, straight from one unpadded forward pass."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    return torch.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1)


def test_response_perplexity_equals_direct_computation(each_arch: tuple[Any, Any], conversations: list) -> None:
    model, tok = each_arch
    nll, count = 0.0, 0
    for sample in conversations:
        prompt = tok.apply_chat_template(sample.messages, tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template([*sample.messages, sample.response], tokenize=False)
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = prompt_ids + tok(full[len(prompt) :], add_special_tokens=False)["input_ids"]
        response_logprobs = _logprobs(model, ids)[len(prompt_ids) - 1 :]
        nll -= response_logprobs.sum().item()
        count += len(response_logprobs)
    got = perplexity(
        model,
        response_sequences(tok, conversations, None),
        window=1024,
        stride=512,
        batch_size=3,
        pad_id=tok.pad_token_id,
    )
    assert got.tokens == count
    assert got.perplexity == pytest.approx(math.exp(nll / count), rel=1e-4)


def test_text_perplexity_sliding_window_equals_manual_windows(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    texts = [
        "The quick brown fox jumps over the lazy dog. " * 6,
        "A short one.",
        "Perplexity of fixed-length models " * 3,
    ]
    ids = tok(texts[0], add_special_tokens=False)["input_ids"]
    window, stride = 16, 6
    assert len(ids) > 3 * window
    # transformers' documented recipe, with the scored-token count made exact.
    nll, count, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        logprobs = _logprobs(model, ids[begin:end])
        new = end - max(prev_end, begin + 1)
        nll -= logprobs[-new:].sum().item()
        count += new
        prev_end = end
        if end == len(ids):
            break
    got = perplexity(
        model, text_sequences(tok, texts[:1]), window=window, stride=stride, batch_size=4, pad_id=tok.pad_token_id
    )
    assert got.tokens == count == len(ids) - 1
    assert got.perplexity == pytest.approx(math.exp(nll / count), rel=1e-4)
    # Without windowing (window larger than the text) every token sees the whole prefix.
    whole = perplexity(
        model, text_sequences(tok, texts), window=4096, stride=2048, batch_size=2, pad_id=tok.pad_token_id
    )
    direct = [-_logprobs(model, tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert whole.perplexity == pytest.approx(math.exp(torch.cat(direct).mean().item()), rel=1e-4)


def _direct_choice(model: Any, tok: Any, messages: list[dict[str, str]], letters: list[str]) -> str:
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    scores = {}
    for letter in letters:
        letter_ids = tok(letter, add_special_tokens=False)["input_ids"]
        scores[letter] = _logprobs(model, prompt_ids + letter_ids)[len(prompt_ids) - 1 :].sum().item()
    return max(scores, key=scores.__getitem__)


@pytest.mark.parametrize("n_shot", [0, 3])
def test_multiple_choice_equals_direct_argmax(tiny: tuple[Any, Any], n_shot: int) -> None:
    model, tok = tiny
    questions = parse_questions((DATA / "mc_20.csv").read_bytes(), "mc_20.csv")
    assert len(questions) == 20
    got = score_multiple_choice(model, tok, questions, n_shot=n_shot, subject="general knowledge", batch_size=7, seed=1)
    expected = []
    for index, q in enumerate(questions):
        if n_shot == 0:  # LLaMA-Factory's English eval template, written out
            content = (
                "The following are multiple choice questions (with answers) about general knowledge.\n\n"
                + q.question
                + "".join(f"\n{k}. {v}" for k, v in q.options.items())
                + "\nAnswer:"
            )
            messages = [{"role": "user", "content": content}]
        else:
            shots = pick_shots(index, questions, None, n_shot, 1)
            assert q not in shots and len(shots) == n_shot
            messages = build_messages(q, shots, lang="en", subject="general knowledge")
        expected.append(_direct_choice(model, tok, messages, list(q.options)))
    assert got.predictions == expected
    assert got.accuracy == pytest.approx(sum(p == q.answer for p, q in zip(expected, questions, strict=True)) / 20)


def test_question_files_in_every_format(tmp_path: Path) -> None:
    csv_rows = (DATA / "mc_20.csv").read_text().splitlines()
    mmlu = "\n".join(csv_rows[1:]).encode()  # MMLU ships without a header row
    assert [q.answer for q in parse_questions(mmlu, "x.csv")][:3] == ["B", "C", "A"]
    jsonl = b'{"question": "1+1?", "A": "1", "B": "2", "answer": "b"}\n'
    assert parse_questions(jsonl, "x.jsonl")[0].answer == "B"
    with pytest.raises(ValueError, match="answer 'E' is not one of"):
        parse_questions(b'[{"question": "q", "A": "1", "B": "2", "answer": "E"}]', "bad.json")


def _one_at_a_time(model: Any, tok: Any, prompt: str, max_new_tokens: int) -> str:
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_batched_generation_equals_one_at_a_time(each_arch: tuple[Any, Any], conversations: list) -> None:
    model, tok = each_arch
    prompts = [tok.apply_chat_template(s.messages, tokenize=False, add_generation_prompt=True) for s in conversations]
    got = generate(model, tok, prompts, GenerationSettings(max_new_tokens=12, batch_size=3))
    assert [g.text for g in got] == [_one_at_a_time(model, tok, p, 12) for p in prompts]
    assert all(g.tokens <= 12 for g in got)
    assert got == generate(model, tok, prompts, GenerationSettings(max_new_tokens=12, batch_size=3))  # deterministic


def test_stop_words_cut_generation(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Tell me a story."}], tokenize=False, add_generation_prompt=True
    )
    free = generate(model, tok, [prompt], GenerationSettings(max_new_tokens=16))[0]
    assert free.truncated and len(free.text) > 6
    stop = free.text[4:6]
    stopped = generate(model, tok, [prompt], GenerationSettings(max_new_tokens=16, stop_words=[stop]))[0]
    assert stopped.text == free.text[: free.text.find(stop)].strip()
    assert not stopped.truncated
    assert cut_at_stop_words("abc###def\nUser:", ["\nUser:", "###"]) == ("abc", True)
