import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.dispatcher.pacing import Choice, SlidingWindow, choose, max_in_any_window


def simulate(limit: int, messages: list[int], latencies: list[float]) -> list[tuple[float, float, int]]:
    """Send one at a time as the dispatcher does (choose, wait, send); return (start, response, segments)."""
    window, now, log = SlidingWindow(limit), 0.0, []
    pending, lat = list(enumerate(messages)), iter(latencies)
    head, head_since = None, 0.0
    while pending:
        if pending[0][0] != head:
            head, head_since = pending[0][0], now
        sizes = [m for _, m in pending]
        choice = choose(sizes, window.room(now), empty=window.is_empty(now),
                        window_holds_a_two=window.holds(now, 2), head_waited_s=now - head_since)
        if choice.index is None:
            now = window.earliest_start(now, choice.wait_for)
            continue
        segments = pending.pop(choice.index)[1]
        start = now
        response = start + next(lat)
        window.record(response, segments)
        log.append((start, response, segments))
        now = response
    return log


def test_three_single_segment_messages_fit_one_second_the_fourth_waits() -> None:
    window = SlidingWindow(3)
    for t in (0.0, 0.01, 0.02):
        assert window.earliest_start(t, 1) == t
        window.record(t, 1)
    assert window.earliest_start(0.03, 1) == 1.0


def test_a_three_segment_message_uses_a_whole_second() -> None:
    window = SlidingWindow(3)
    window.record(0.0, 3)
    assert window.earliest_start(0.5, 1) == 1.0
    assert window.earliest_start(1.0, 3) == 1.0


def test_a_message_larger_than_the_limit_goes_alone() -> None:
    window = SlidingWindow(3)
    assert window.earliest_start(0.0, 5) == 0.0
    window.record(0.0, 5)
    assert window.earliest_start(0.2, 1) == 1.0


def test_seeded_history_from_another_process_is_honoured() -> None:
    window = SlidingWindow(3)
    window.record(10.5, 1)
    window.record(10.2, 2)  # out of order, as a ledger seed may be
    assert window.earliest_start(10.6, 1) == 11.2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=3), min_size=5, max_size=120),
    st.integers(min_value=0, max_value=2**32),
)
def test_acceptance_times_never_exceed_the_limit_whatever_the_latency(messages: list[int], seed: int) -> None:
    rng = random.Random(seed)
    latencies = [rng.uniform(0.001, 0.3) for _ in messages]
    log = simulate(3, messages, latencies)
    # Twilio accepts each message at an unknown moment between our start and its response.
    accepted = [(rng.uniform(start, response), seg) for start, response, seg in log]
    assert max_in_any_window(accepted) <= 3


def test_the_achieved_rate_stays_within_two_percent_of_the_limit() -> None:
    rng = random.Random(7)
    messages = [rng.choice([1, 1, 2, 3]) for _ in range(400)]
    log = simulate(3, messages, [0.004] * len(messages))
    total = sum(m for m in messages)
    elapsed = log[-1][1] - log[0][0]
    rate = (total - messages[-1]) / elapsed  # the last window is not a full one
    assert 3 * 0.98 <= rate <= 3.0


def test_choose_packs_the_window_but_never_keeps_the_head_waiting_long() -> None:
    def pick(pending: list[int], room: float, *, empty: bool = False, two: bool = False, waited: float = 0) -> Choice:
        return choose(pending, room, empty=empty, window_holds_a_two=two, head_waited_s=waited)

    assert pick([3, 1, 2], room=2) == Choice(2)
    assert pick([1, 2, 1], room=3, empty=True) == Choice(1)  # the 1s are kept to fill beside a 2
    assert pick([3, 1, 1], room=1) == Choice(1)  # 1s are plentiful: they may go three to a second
    assert pick([1, 2, 2], room=1) == Choice(None, 2)  # a scarce 1 waits to pair with a 2
    assert pick([1, 2, 2], room=1, two=True) == Choice(0)  # ... and fills the room beside one
    assert pick([3, 1], room=1, waited=60) == Choice(None, 3)
    assert pick([5], room=3, empty=True) == Choice(0)
    assert pick([], room=3, empty=True) == Choice(None, 0)


@pytest.mark.parametrize("seed", range(5))
def test_a_typical_mix_is_packed_to_the_limit_even_with_slow_sends(seed: int) -> None:
    rng = random.Random(seed)
    messages = [rng.choices([1, 2, 3], weights=[6, 2.5, 1.5])[0] for _ in range(110)]
    latencies = [rng.uniform(0.002, 0.02) for _ in messages]  # uneven sends stagger the window
    log = simulate(3, messages, latencies)
    rate = (sum(messages) - log[-1][2]) / (log[-1][1] - log[0][0])
    assert rate >= 2.94


def test_max_in_any_window_counts_a_sliding_second() -> None:
    assert max_in_any_window([(0.0, 1), (0.5, 1), (0.99, 1), (1.0, 1)]) == 3
    assert max_in_any_window([(0.0, 2), (0.999, 2)]) == 4


def test_asking_about_a_later_slot_does_not_forget_what_is_still_in_the_window() -> None:
    window = SlidingWindow(3)
    window.record(10.0, 2)
    window.record(10.1, 1)
    assert window.room(11.05) == 2  # the 2 has left by then ...
    assert window.room(10.5) == 0  # ... but not yet: the slot asked about was not used
    assert window.earliest_start(10.5, 1) == 11.0


def simulate_in_flight(limit: int, messages: list[int], latencies: list[float],
                       in_flight: int) -> list[tuple[float, float, int]]:
    """As ``simulate``, with up to ``in_flight`` sends going at once, as a fast sender's lane keeps them."""
    window, now, log = SlidingWindow(limit), 0.0, []
    pending, lat = list(messages), iter(latencies)
    going: list[tuple[float, int]] = []  # (response time, segments)
    while pending or going:
        for response, segments in sorted(going):
            if response <= now:
                window.record(response, segments)
                window.release(segments)
                going.remove((response, segments))
        start_at = window.earliest_start(now, min(pending)) if pending and len(going) < in_flight else float("inf")
        if start_at <= now:
            choice = choose(pending, window.room(now), empty=window.is_empty(now),
                            window_holds_a_two=window.holds(now, 2), head_waited_s=0)
            if choice.index is not None:
                segments = pending.pop(choice.index)
                window.start(segments)
                response = now + next(lat)
                going.append((response, segments))
                log.append((now, response, segments))
                continue
        now = min([start_at, *(r for r, _ in going)])
    return log


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=3), min_size=5, max_size=400),
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=2, max_value=15),
)
def test_sends_in_flight_together_never_exceed_the_limit_whatever_the_latency(messages: list[int], seed: int,
                                                                              in_flight: int) -> None:
    rng = random.Random(seed)
    log = simulate_in_flight(150, messages, [rng.uniform(0.001, 0.3) for _ in messages], in_flight)
    accepted = [(rng.uniform(start, response), seg) for start, response, seg in log]
    assert max_in_any_window(accepted) <= 150
    assert sorted(seg for _, _, seg in log) == sorted(messages)


def test_a_fast_sender_with_sends_in_flight_reaches_its_limit_where_one_at_a_time_cannot() -> None:
    messages = [1] * 3000
    latencies = [0.02] * len(messages)  # 20 ms a send: one at a time allows 50 a second
    serial, parallel = simulate(150, messages, latencies), simulate_in_flight(150, messages, latencies, 15)
    for log in (serial, parallel):
        assert max_in_any_window([(response, seg) for _, response, seg in log]) <= 150
    rate = (len(messages) - 1) / (parallel[-1][1] - parallel[0][0])
    assert rate >= 150 * 0.97  # a round trip per window is the cost (pacing.py)
    assert (len(messages) - 1) / (serial[-1][1] - serial[0][0]) <= 51
