"""Multiple-choice accuracy (MMLU / C-Eval style): the option whose answer letter is most likely wins.

Prompts follow LLaMA-Factory's evaluation templates so scores line up with theirs: the question,
one line per option, then "Answer:"; few-shot examples are earlier user/assistant turns.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..prompts import encode_exchange, render_prompt
from ._loglik import IGNORE, ScoredSpan, sum_logprobs

LETTERS = "ABCDEFGH"  # MMLU and C-Eval use A-D; a few sets have more options

# (system line naming the subject, one option line, answer cue), as in LLaMA-Factory's eval templates.
EVAL_TEMPLATES = {
    "en": (
        "The following are multiple choice questions (with answers) about {subject}.\n\n",
        "\n{letter}. {text}",
        "\nAnswer:",
    ),
    "zh": ("以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n", "\n{letter}. {text}", "\n答案："),
}


@dataclass
class Question:
    """One question with lettered options and the correct letter."""

    question: str
    options: dict[str, str]
    answer: str


@dataclass
class MultipleChoiceResult:
    """Accuracy and, per question, the chosen letter and each option's log-likelihood."""

    accuracy: float
    predictions: list[str]
    option_logprobs: list[dict[str, float]] = field(default_factory=list)


def _question_from_row(row: dict[str, Any], where: str) -> Question:
    options = {k: str(row[k]) for k in LETTERS if row.get(k) not in (None, "")}
    answer = str(row.get("answer", "")).strip().upper()
    if "question" not in row or len(options) < 2:
        raise ValueError(f"{where}: needs `question` and at least options A and B")
    if answer not in options:
        raise ValueError(f"{where}: answer {answer!r} is not one of the options {sorted(options)}")
    return Question(str(row["question"]), options, answer)


def parse_questions(data: bytes, filename: str) -> list[Question]:
    """Questions from CSV (C-Eval with a header row, or MMLU's headerless question,A,B,C,D,answer), JSON or JSONL."""
    text = data.decode("utf-8-sig")
    if filename.endswith(".jsonl"):
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif filename.endswith(".json"):
        rows = json.loads(text)
    elif filename.endswith(".csv"):
        table = list(csv.reader(io.StringIO(text)))
        header = [cell.strip() for cell in table[0]] if table else []
        if "question" in header and "answer" in header:
            rows = [dict(zip(header, r, strict=False)) for r in table[1:]]
        else:
            rows = [dict(zip(["question", "A", "B", "C", "D", "answer"], r, strict=False)) for r in table]
    else:
        raise ValueError(f"{filename}: multiple-choice files must be .csv, .json or .jsonl")
    return [_question_from_row(row, f"{filename} question {i + 1}") for i, row in enumerate(rows)]


def _exchange(question: Question, lang: str) -> tuple[str, str]:
    _, option_line, answer_cue = EVAL_TEMPLATES[lang]
    lines = "".join(option_line.format(letter=k, text=v) for k, v in question.options.items())
    return question.question + lines + answer_cue, question.answer


def build_messages(question: Question, shots: Sequence[Question], *, lang: str, subject: str) -> list[dict[str, str]]:
    """Chat turns for one question: solved examples as user/assistant pairs, then the question itself."""
    messages = []
    for shot in shots:
        prompt, answer = _exchange(shot, lang)
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": _exchange(question, lang)[0]})
    messages[0]["content"] = EVAL_TEMPLATES[lang][0].format(subject=subject) + messages[0]["content"]
    return messages


def pick_shots(
    index: int, questions: Sequence[Question], dev: Sequence[Question] | None, n_shot: int, seed: int
) -> list[Question]:
    """`n_shot` examples for question `index`: from `dev`, else from the other questions; seeded per question."""
    pool = list(dev) if dev else [q for i, q in enumerate(questions) if i != index]
    return random.Random(seed * 100_003 + index).sample(pool, min(n_shot, len(pool)))


def score_multiple_choice(
    model: Any,
    tokenizer: Any,
    questions: Sequence[Question],
    *,
    dev: Sequence[Question] | None = None,
    n_shot: int = 0,
    lang: str = "en",
    subject: str = "general knowledge",
    template: str | None = None,
    batch_size: int = 8,
    seed: int = 42,
) -> MultipleChoiceResult:
    """Score each option's letter as the assistant's reply and pick the most likely one."""
    spans, keys = [], []
    for index, question in enumerate(questions):
        shots = pick_shots(index, questions, dev, n_shot, seed)
        prompt = render_prompt(tokenizer, build_messages(question, shots, lang=lang, subject=subject), template)
        for letter in question.options:
            prompt_ids, letter_ids = encode_exchange(tokenizer, prompt, letter)
            spans.append(ScoredSpan(prompt_ids + letter_ids, [IGNORE] * len(prompt_ids) + letter_ids))
            keys.append((index, letter))
    scores = sum_logprobs(model, spans, batch_size=batch_size, pad_id=tokenizer.pad_token_id)
    option_logprobs: list[dict[str, float]] = [{} for _ in questions]
    for (index, letter), (logprob, _) in zip(keys, scores, strict=True):
        option_logprobs[index][letter] = logprob
    predictions = [max(lp, key=lp.__getitem__) for lp in option_logprobs]
    correct = sum(p == q.answer for p, q in zip(predictions, questions, strict=True))
    return MultipleChoiceResult(correct / len(questions) if questions else 0.0, predictions, option_logprobs)
