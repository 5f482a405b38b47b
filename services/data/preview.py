"""Show, for one record, the exact tokens the model sees and which of them are trained."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .converters import Record
from .rendering import Renderer
from .tokenization import LabelOptions, build_example, encode_batch


class TokenView(BaseModel):
    """One token of a prepared row."""

    id: int = Field(description="Token id.")
    text: str = Field(description="The token's text (special tokens as written).")
    trained: bool = Field(description="Whether loss is taken on this token.")


def preview_record(record: Record, renderer: Renderer, options: LabelOptions) -> list[list[TokenView]]:
    """The tokens of every row `record` becomes (two for a preference pair, several for long text).

    Raises:
        RecordError: the record cannot be rendered or does not fit `cutoff_len`.
    """
    tokenizer = renderer.tokenizer
    renderings = renderer.render_record(record)
    rows = []
    for encoding, rendered in zip(encode_batch(tokenizer, [r.text for r in renderings]), renderings, strict=True):
        for example in build_example(encoding, rendered, options):
            texts = [tokenizer.decode([i]) for i in example.input_ids]
            rows.append(
                [
                    TokenView(id=i, text=t, trained=label != -100)
                    for i, t, label in zip(example.input_ids, texts, example.labels, strict=True)
                ]
            )
    return rows


def format_preview(rows: list[list[TokenView]], style: Any = None) -> str:
    """Rows as text, trained spans marked: `style(text, trained)` may colour them; by default ⟦trained⟧."""
    mark = style or (lambda text, trained: f"⟦{text}⟧" if trained else text)
    blocks = []
    for row in rows:
        pieces: list[tuple[str, bool]] = []
        for token in row:
            if pieces and pieces[-1][1] == token.trained:
                pieces[-1] = (pieces[-1][0] + token.text, token.trained)
            else:
                pieces.append((token.text, token.trained))
        trained = sum(t.trained for t in row)
        blocks.append("".join(mark(text, flag) for text, flag in pieces) + f"\n-- {len(row)} tokens, {trained} trained")
    return "\n\n".join(blocks)
