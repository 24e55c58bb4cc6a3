import random

from hypothesis import given, settings
from hypothesis import strategies as st

from services.dispatcher.pacing import SlidingWindow, choose, max_in_any_window


def simulate(limit: int, messages: list[int], latencies: list[float]) -> list[tuple[float, float, int]]:
    """Send one at a time as the dispatcher does (choose, wait, send); return (start, response, segments)."""
    window, now, log = SlidingWindow(limit), 0.0, []
    pending, lat = list(messages), iter(latencies)
    passed_over = 0
    while pending:
        index = choose(pending, window.room(now), empty=window.is_empty(now), head_passed_over=passed_over)
        if index is None:
            now = window.earliest_start(now, pending[0])
            continue
        passed_over = passed_over + 1 if index else 0
        segments = pending.pop(index)
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


def test_choose_packs_the_window_but_never_passes_over_the_head_for_long() -> None:
    assert choose([3, 1, 2], room=2, empty=False, head_passed_over=0) == 2
    assert choose([3, 1, 1], room=1, empty=False, head_passed_over=0) == 1
    assert choose([3, 1], room=1, empty=False, head_passed_over=3) is None
    assert choose([5], room=3, empty=True, head_passed_over=0) == 0
    assert choose([], room=3, empty=True, head_passed_over=0) is None


def test_max_in_any_window_counts_a_sliding_second() -> None:
    assert max_in_any_window([(0.0, 1), (0.5, 1), (0.99, 1), (1.0, 1)]) == 3
    assert max_in_any_window([(0.0, 2), (0.999, 2)]) == 4
