"""Full-text words, shared by the parser (a term's words) and the reference evaluation."""

from __future__ import annotations

import re

__all__ = ["search_terms"]


def search_terms(text: str) -> list[str]:
    """Case-folded words of ``text``, split at anything not a letter or digit.

    A search matches an event when each of its words starts a word of the title
    or description: "data" finds "Database", "err" finds "error".
    Lower-casing (not ``casefold``, which turns "ß" into "ss") matches SQLite FTS5's
    unicode61 folding, so a word always finds itself.
    """
    return _WORD.findall(text.lower())


# A run of characters for which str.isalnum() holds: the pattern's \w is exactly that and
# "_" (checked for every code point), and one C call beats a generator over the text.
_WORD = re.compile(r"[^\W_]+")
