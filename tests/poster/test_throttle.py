"""The per-token throttle spaces calls by 1/rate, on a fake clock (no real sleeping)."""

import threading

import pytest

from poster_pipeline.poster.throttle import RequestThrottle, throttle_for_token


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_calls_are_spaced_by_the_interval():
    clock = FakeClock()
    throttle = RequestThrottle(5.0, clock=clock, sleep=clock.sleep)
    waits = [throttle.wait() for _ in range(6)]
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([0.2] * 5)
    assert clock.now == pytest.approx(101.0)


def test_idle_time_is_not_banked_as_a_burst():
    clock = FakeClock()
    throttle = RequestThrottle(2.0, clock=clock, sleep=clock.sleep)
    throttle.wait()
    clock.now += 10
    assert throttle.wait() == 0
    assert throttle.wait() == pytest.approx(0.5)


def test_concurrent_callers_get_distinct_slots():
    throttle = RequestThrottle(10.0, clock=lambda: 0.0, sleep=lambda _s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        delay = throttle.wait()
        with lock:
            waits.append(delay)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([i * 0.1 for i in range(20)])


def test_clients_of_one_token_share_a_throttle_and_other_tokens_do_not():
    assert throttle_for_token("1:aa", 5.0) is throttle_for_token("1:aa", 5.0)
    assert throttle_for_token("1:aa", 5.0) is not throttle_for_token("2:bb", 5.0)


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError):
        RequestThrottle(0)
