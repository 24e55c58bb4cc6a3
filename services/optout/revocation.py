"""Does a member's free-text reply revoke consent? Pure; the words are data (revocation_phrases.toml).

Since 2025-04-11 a member may revoke "through any reasonable means" (47 CFR 64.1200(a)(10)-(12)): stop,
quit, end, revoke, opt out, cancel and unsubscribe are revocations per se, other wording counts when a
reasonable person would read it so, and replies in the language of the texts count too. Twilio's own
filter (keywords.py) sees single words only, so this reads what it lets through:

- ``certain``: the reply is only revocation words and fillers (``"STOP!!!"``, ``"opt out please"``,
  ``"No más"``), or holds a revocation phrase anywhere (``"please stop texting me"``, ``"arrêtez de
  m'envoyer des messages"``), once harmless uses are taken out (``"stop by the booth at 3"``);
- ``doubtful``: it holds a word that might mean revocation (``"stop"``, ``"wrong number"``): staff decide;
- ``none``: anything else.

Every language of the table is tried, certain readings before doubtful ones. Normalising (``normalise``)
folds case, drops accents and apostrophes and turns other punctuation into spaces, so the table is written
in that form; ``load_table`` refuses an entry that is not (it would never match).
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

TABLE_PATH: Final = Path(__file__).with_name("revocation_phrases.toml")
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc\u0060\u00b4]")
_NOT_A_WORD = re.compile(r"[^0-9a-z]+")
_LISTS = ("words", "fillers", "harmless", "phrases", "doubtful")


class Revocation(StrEnum):
    CERTAIN = "certain"
    DOUBTFUL = "doubtful"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Reading:
    revocation: Revocation
    matched: str | None = None  # the table's entry that decided, as normalised
    language: str | None = None


NOT_A_REVOCATION: Final = Reading(Revocation.NONE)

Phrase = tuple[str, ...]
# A list of the table by its phrases' first word, each word's phrases longest first ("opt out" before "opt"):
# a reply is read in one pass over its words, whatever the size of the table.
Index = Mapping[str, tuple[Phrase, ...]]


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    words: Index
    fillers: Index
    harmless: Index
    phrases: Index
    doubtful: Index


def normalise(text: str) -> str:
    """Case folded, accents and apostrophes dropped, other punctuation a space, spaces collapsed."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return " ".join(_NOT_A_WORD.sub(" ", _APOSTROPHES.sub("", bare)).split())


def load_table(path: Path = TABLE_PATH) -> tuple[Language, ...]:
    """The table, checked; raises ValueError naming the language and entry that is wrong."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    languages = []
    for code, lists in raw.items():
        if not isinstance(lists, dict) or set(lists) != set(_LISTS):
            raise ValueError(f"{path.name}: [{code}] must have exactly {', '.join(_LISTS)}")
        parsed = {name: _phrases(path, code, name, lists[name]) for name in _LISTS}
        languages.append(Language(code, **parsed))
    if not languages:
        raise ValueError(f"{path.name} holds no language")
    return tuple(languages)


def _phrases(path: Path, code: str, name: str, entries: object) -> Index:
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path.name}: [{code}] {name} must be a list of phrases")
    by_first: dict[str, list[Phrase]] = {}
    for entry in entries:
        if not isinstance(entry, str) or not entry or normalise(entry) != entry:
            raise ValueError(f"{path.name}: [{code}] {name} entry {entry!r} is not written normalised "
                             f"(expected {normalise(str(entry))!r})")
        phrase = tuple(entry.split(" "))
        by_first.setdefault(phrase[0], []).append(phrase)
    return {first: tuple(sorted(phrases, key=len, reverse=True)) for first, phrases in by_first.items()}


TABLE: Final = load_table()


def read_reply(body: str, table: Sequence[Language] = TABLE) -> Reading:
    """What a reply means for consent (see the module's docstring)."""
    tokens = tuple(normalise(body).split())
    if not tokens:
        return NOT_A_REVOCATION
    for language in table:
        word = _only_revocation_words(tokens, language)
        if word is not None:
            return Reading(Revocation.CERTAIN, word, language.code)
    kept = {language.code: _without(tokens, language.harmless) for language in table}
    for language in table:
        phrase = _first_within(kept[language.code], language.phrases)
        if phrase is not None:
            return Reading(Revocation.CERTAIN, phrase, language.code)
    for language in table:
        phrase = _first_within(kept[language.code], language.doubtful)
        if phrase is not None:
            return Reading(Revocation.DOUBTFUL, phrase, language.code)
    return NOT_A_REVOCATION


def _only_revocation_words(tokens: Phrase, language: Language) -> str | None:
    """The first revocation word when the reply is made of words and fillers only, else None."""
    found: str | None = None
    i = 0
    while i < len(tokens):
        word = _starting_at(tokens, i, language.words)
        entry = word or _starting_at(tokens, i, language.fillers)
        if entry is None:
            return None
        if word is not None and found is None:
            found = " ".join(word)
        i += len(entry)
    return found


def _starting_at(tokens: Phrase, i: int, index: Index) -> Phrase | None:
    """The longest phrase of ``index`` that the tokens from ``i`` on start with."""
    return next((p for p in index.get(tokens[i], ()) if tokens[i:i + len(p)] == p), None)


def _without(tokens: Phrase, harmless: Index) -> list[Phrase]:
    """The runs of tokens left once every harmless phrase is cut out (a phrase never spans a cut)."""
    runs: list[Phrase] = []
    start = i = 0
    while i < len(tokens):
        cut = _starting_at(tokens, i, harmless)
        if cut is None:
            i += 1
            continue
        runs.append(tokens[start:i])
        i += len(cut)
        start = i
    runs.append(tokens[start:])
    return [run for run in runs if run]


def _first_within(runs: Sequence[Phrase], index: Index) -> str | None:
    """The first phrase of ``index`` found in the runs, reading left to right."""
    for run in runs:
        for i in range(len(run)):
            phrase = _starting_at(run, i, index)
            if phrase is not None:
                return " ".join(phrase)
    return None
