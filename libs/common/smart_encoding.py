"""Twilio Smart Encoding: Unicode look-alikes replaced by GSM-7 text before a message is encoded.

The table is Twilio's published list as mirrored by the calculator's ``SmartEncodingMap`` (see
``docs/segments.md#smart-encoding``), so that counts with Smart Encoding on match the calculator. The
replacement is made per code point, before the text is split into grapheme clusters, as the
calculator does.

Two entries are surprising but kept for parity: most Unicode spaces (NBSP, U+2000–U+200A, ...) become
*two* spaces and TAB becomes seven; ``‹`` becomes ``>`` and ``›`` becomes ``<``. What Twilio itself sends
for the spaces is unverified; two spaces can only over-count, never under-count.
"""

from __future__ import annotations

from typing import Final


def _each(target: str, sources: str) -> dict[str, str]:
    return dict.fromkeys(sources, target)


_REPLACEMENTS: Final[dict[str, str]] = {
    **_each('"', "\u00ab\u00bb\u201c\u201d\u201e\u201f\u02ba\u02ee\u275d\u275e\u301d\u301e\uff02"),
    **_each(
        "'",
        "\u2018\u2019\u201b\u02bb\u02c8\u02bc\u02bd\u02b9\uff07\u00b4\u02ca\u0060\u02cb\u275b\u275c"
        "\u0313\u0314\ufe10\ufe11",
    ),
    **_each("/", "\u00f7\u29f8\u0337\u0338\u2044\u2215\uff0f"),
    "\u00bc": "1/4",
    "\u00bd": "1/2",
    "\u00be": "3/4",
    **_each("\\", "\u29f9\u29f5\u20e5\ufe68\uff3c"),
    **_each("_", "\u0332\uff3f\u2017"),
    **_each("|", "\u20d2\u20d3\u2223\uff5c\u23b8\u23b9\u23d0\u239c\u239f"),
    **_each("-", "\u23bc\u23bd\u2015\ufe63\uff0d\u2010\u2043\u2013\u2014\u2022"),
    **_each("@", "\ufe6b\uff20"),
    **_each("$", "\ufe69\uff04"),
    **_each("!", "\u01c3\ufe15\ufe57\uff01"),
    **_each("#", "\ufe5f\uff03"),
    **_each("%", "\ufe6a\uff05"),
    **_each("&", "\ufe60\uff06"),
    **_each(",", "\u201a\u0326\ufe50\ufe51\uff0c\uff64\u3001"),
    **_each("(", "\u2768\u276a\ufe59\uff08\u27ee\u2985"),
    **_each(")", "\u2769\u276b\ufe5a\uff09\u27ef\u2986"),
    **_each(
        "*",
        "\u204e\u2217\u229b\u2722\u2723\u2724\u2725\u2731\u2732\u2733\u273a\u273b\u273c\u273d"
        "\u2743\u2749\u274a\u274b\u29c6\ufe61\uff0a",
    ),
    **_each("+", "\u02d6\ufe62\uff0b"),
    **_each(".", "\u3002\ufe52\uff0e\uff61"),
    **{chr(0xFF10 + d): str(d) for d in range(10)},
    **_each(":", "\u02d0\u02f8\u2982\ua789\ufe13\uff1a"),
    **_each(";", "\u204f\ufe14\ufe54\uff1b"),
    **_each("<", "\ufe64\uff1c\u203a"),
    **_each("=", "\u0347\ua78a\ufe66\uff1d"),
    **_each(">", "\ufe65\uff1e\u2039"),
    **_each("?", "\ufe16\ufe56\uff1f"),
    # Full-width capitals U+FF21-U+FF3A, then the small capitals the list knows (none for Q and X).
    **{chr(0xFF21 + i): chr(ord("A") + i) for i in range(26)},
    **dict(
        zip(
            "\u1d00\u0299\u1d04\u1d05\u1d07\ua730\u0262\u029c\u026a\u1d0a\u1d0b\u029f\u1d0d\u0274\u1d0f"
            "\u1d18\u0280\ua731\u1d1b\u1d1c\u1d20\u1d21\u028f\u1d22",
            "ABCDEFGHIJKLMNOPRSTUVWYZ",
            strict=True,
        )
    ),
    **_each("^", "\u02c6\u0302\uff3e\u1dcd"),
    **_each("{", "\u2774\ufe5b\uff5b"),
    **_each("}", "\u2775\ufe5c\uff5d"),
    "\uff3b": "[",
    "\uff3d": "]",
    **_each("~", "\u02dc\u02f7\u0303\u0330\u0334\u223c\uff5e"),
    **_each(
        "  ",
        "\u00a0\u2000\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
        "\u008d\u009f\u0080\u0090\u009b",
    ),
    **_each(" ", "\u2001\u2028\u2029"),
    **_each("", "\u0000\u0003\u0004\u0010\u0011\u0012\u0013\u0014\u0017\u0019\u200b\u2060\ufeff"),
    "\t": " " * 7,
    "\u203c": "!!",
    "\u2026": "...",
}

# str.translate wants ordinals; translating is one C loop, which keeps this off the hot path's budget.
_TABLE: Final[dict[int, str]] = {ord(char): text for char, text in _REPLACEMENTS.items()}


def smart_encode(body: str) -> str:
    """Return ``body`` with every character Smart Encoding knows replaced by its GSM-7 text.

    Characters without a mapping (accented letters such as ``ë``, ``á``, ``ç``, and every emoji) are left
    as they are, so the result is GSM-7 only when every non-GSM character had a mapping.
    """
    return body.translate(_TABLE)


def mapped_characters() -> frozenset[str]:
    """Every character Smart Encoding replaces (for tests and for the composer's help text)."""
    return frozenset(_REPLACEMENTS)
