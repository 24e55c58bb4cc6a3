"""Why a campaign would not be sent, in the words every screen shows: here, the member cap per run."""

from __future__ import annotations

from libs.common.send_checks import member_cap, over_member_cap


def test_the_organisation_cap_wins_over_the_platform_default() -> None:
    assert member_cap(None, 250_000) == 250_000
    assert member_cap(1_000_000, 250_000) == 1_000_000
    assert member_cap(500, 250_000) == 500


def test_an_audience_at_the_cap_is_sent_and_one_over_it_refused_with_its_size() -> None:
    assert over_member_cap(250_000, 250_000) is None
    refusal = over_member_cap(312_400, 250_000)
    assert refusal is not None
    assert (refusal.field, refusal.code) == ("audience", "audience_too_large")
    assert refusal.message == ("The audience has 312,400 members; one run may have at most 250,000. Narrow the "
                               "audience, or ask an admin to raise the organisation's member cap.")


def test_a_count_stopped_at_the_cap_says_at_least() -> None:
    refusal = over_member_cap(250_001, 250_000, at_least=True)
    assert refusal is not None and refusal.message.startswith("The audience has at least 250,001 members;")
