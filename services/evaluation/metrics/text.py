"""Language detection and Chinese word segmentation shared by BLEU, ROUGE and accuracy."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import cache

# CJK ideographs, extension A and compatibility ideographs, plus CJK punctuation and full-width forms.
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
CJK_SHARE_FOR_ZH = 0.2  # mixed texts (code, names in Latin script) still count as Chinese above this share


def detect_language(texts: Iterable[str]) -> str:
    """`zh` when CJK characters make up more than CJK_SHARE_FOR_ZH of the non-space characters, else `en`."""
    total = cjk = 0
    for text in texts:
        total += sum(not ch.isspace() for ch in text)
        cjk += len(_CJK.findall(text))
    return "zh" if total and cjk / total > CJK_SHARE_FOR_ZH else "en"


@cache
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)  # its dictionary-loading banner is noise in worker logs
    return jieba


def segment_words(text: str) -> list[str]:
    """Words of `text` by jieba (Chinese and mixed text), whitespace tokens dropped."""
    return [token for token in _jieba().cut(text) if token.strip()]


class JiebaTokenizer:
    """The `tokenize(text)` object rouge-score accepts, segmenting with jieba instead of ASCII-only regexes."""

    def tokenize(self, text: str) -> list[str]:
        """Lower-cased jieba words."""
        return [token.lower() for token in segment_words(text)]
