"""The free-text revocation reader (services/optout/revocation.py) on a table of replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.optout.keywords import Kind, classify
from services.optout.revocation import Revocation, load_table, normalise, read_reply

C, D, N = Revocation.CERTAIN, Revocation.DOUBTFUL, Revocation.NONE

REPLIES = [
    # per se, with punctuation, case and spacing Twilio's filter does not forgive
    ("STOP!!!", C), ("stop.", C), ("  Stop   please ", C), ("Please STOP", C), ("stop it", C),
    ("STOP STOP STOP", C), ("Stop 🛑", C), ("Opt out", C), ("OPT-OUT", C), ("opt out please", C),
    ("Unsubscribe me", C), ("unsubscribe me now, thanks", C), ("Cancel.", C), ("quit!", C), ("End.", C),
    ("revoke", C), ("stop", C), ("I quit", C), ("stop all texts", C), ("Stop this", C),
    # phrases anywhere
    ("please stop texting me", C), ("Please stop texting me!", C), ("PLEASE   STOP   TEXTING   ME", C),
    ("remove me from this list", C), ("Remove me from your list please", C), ("no more texts", C),
    ("No more messages, thank you", C), ("don't text me", C), ("Don’t text me again", C),
    ("do not text me", C), ("Do not contact me again", C), ("take me off your list", C),
    ("I want to unsubscribe", C), ("How do I opt out?", C), ("stop sending me these", C),
    ("Leave me alone", C), ("Please stop by and stop texting me", C), ("withdraw my consent", C),
    # Spanish
    ("No más", C), ("no mas", C), ("NO MÁS!", C), ("Basta", C), ("basta ya", C), ("Alto", C),
    ("no más mensajes por favor", C), ("Deja de enviarme mensajes", C), ("por favor no me envíen más", C),
    ("quiero darme de baja", C), ("Dar de baja", C), ("Baja", C), ("Cancelar", C),
    # French
    ("Arrêtez", C), ("ARRET", C), ("arrêt svp", C), ("Arrêtez de m'envoyer des messages", C),
    ("Ne m’envoyez plus de SMS", C), ("plus de messages merci", C), ("Désabonnez-moi", C),
    ("je veux me désinscrire", C), ("Retirez-moi de la liste", C),
    # doubtful: staff decide
    ("Can you stop?", D), ("Wrong number", D), ("not interested", D), ("remove", D),
    ("this is spam", D), ("I want to cancel", D), ("numero equivocado", D), ("No más de dos por favor", D),
    ("faux numéro", D), ("go away", D),
    # not a revocation
    ("stop by the booth at 3", N), ("Stop by the booth at 3!", N), ("I'll stop in on Friday", N),
    ("Don't stop the updates, love them", N), ("The bus stop on Main St", N), ("See you at the end of the day", N),
    ("Please cancel my registration for the gala", N), ("Thanks!", N), ("yes", N), ("What time does it end?", N),
    ("Where is the weekend event?", N), ("Para mí, dos entradas", N), ("Sin parar", N), ("arrêt de bus", N),
    ("START", N), ("HELP", N), ("", N), ("   ", N), ("!!!", N), ("Stopford Hall is lovely", N),
    ("unstoppable", N), ("I quit my job, great news", N),
]


@pytest.mark.parametrize(("body", "expected"), REPLIES, ids=[body or "<empty>" for body, _ in REPLIES])
def test_replies(body: str, expected: Revocation) -> None:
    assert read_reply(body).revocation is expected


def test_the_match_names_the_entry_and_its_language() -> None:
    reading = read_reply("Ne m'envoyez plus rien")
    assert (reading.revocation, reading.matched, reading.language) == (C, "ne menvoyez plus", "fr")
    assert read_reply("STOP!!!").matched == "stop"
    assert read_reply("Wrong number").matched == "wrong number"
    assert read_reply("hello").matched is None


def test_normalising() -> None:
    assert normalise("  Don’t   TEXT-me!! ") == "dont text me"
    assert normalise("No MÁS, ¡basta!") == "no mas basta"
    assert normalise("Arrêtez de m'envoyer") == "arretez de menvoyer"


def test_twilio_keywords_are_still_read_as_today() -> None:
    # The handler asks keywords.classify first; only what it calls OTHER reaches read_reply.
    assert classify("STOP").kind is Kind.OPT_OUT
    assert classify("OPTOUT").kind is Kind.OPT_OUT
    assert classify("OPT OUT").kind is Kind.OTHER and read_reply("OPT OUT").revocation is C
    assert classify("STOP!!!").kind is Kind.OTHER and read_reply("STOP!!!").revocation is C


@pytest.mark.parametrize(("toml", "message"), [
    ('[en]\nwords = ["Arrêtez"]\nfillers = ["a"]\nharmless = ["a"]\nphrases = ["a"]\ndoubtful = ["a"]\n',
     "not written normalised"),
    ('[en]\nwords = ["stop"]\nfillers = ["a"]\n', "must have exactly"),
    ('[en]\nwords = []\nfillers = ["a"]\nharmless = ["a"]\nphrases = ["a"]\ndoubtful = ["a"]\n', "list of phrases"),
    ("", "no language"),
])
def test_a_bad_table_is_refused_with_a_clear_error(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "phrases.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_table(path)
