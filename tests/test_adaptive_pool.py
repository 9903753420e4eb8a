"""The adaptive thread pool the feed poller runs on."""

import threading
import time

import pytest

from resources.adaptive_pool import BUSY_SHARE, map_adaptive, more_workers


def test_results_keep_item_order_and_every_item_runs_once():
    seen = []
    lock = threading.Lock()

    def square(n):
        with lock:
            seen.append(n)
        return n * n

    assert map_adaptive(square, list(range(200)), limit=16) == [n * n for n in range(200)]
    assert sorted(seen) == list(range(200))
    assert map_adaptive(square, [], limit=4) == []


def test_the_first_failure_reaches_the_caller():
    def fail_on_seven(n):
        if n == 7:
            raise ValueError("seven")
        return n

    with pytest.raises(ValueError, match="seven"):
        map_adaptive(fail_on_seven, list(range(50)), limit=8)


def test_waiting_work_grows_to_the_limit():
    """Calls that wait (as on a far host) leave the CPU idle: the pool doubles up to its limit."""
    running, peak = 0, 0
    lock = threading.Lock()

    def wait(_):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    map_adaptive(wait, list(range(160)), limit=32, initial=4)
    assert peak == 32  # how much sooner that finishes is a timing: bench/, not a test on a busy machine


def test_growth_rule():
    assert more_workers(4, 32, busy=0.1) == 4        # waiting: double
    assert more_workers(16, 20, busy=0.1) == 4       # never past the limit
    assert more_workers(32, 32, busy=0.0) == 0
    assert more_workers(4, 32, busy=BUSY_SHARE) == 0  # CPU-bound: threads would only contend
    assert more_workers(4, 32, busy=1.6) == 0
