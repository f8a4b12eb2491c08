"""radiusd.admission: the bounded queue between a worker's two threads (unit tests, fake clock) and a two-thread
stress run in which no admitted request is ever lost or handed out twice."""

from __future__ import annotations

import random
import sys
import threading
import time

from radiusd.admission import CLOSED, Admission, IssuedStates


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bounded_and_urgent_first() -> None:
    q = Admission(3, clock=Clock())
    assert q.offer("a") == (True, None)
    assert q.offer("b") == (True, None)
    assert q.offer("c") == (True, None)
    assert q.offer("d") == (True, "a")  # full: the oldest ordinary request makes room
    assert q.offer("S1", urgent=True) == (True, "b")
    assert len(q) == 3
    assert [q.get(), q.get(), q.get()] == ["S1", "d", "c"]  # more than half full: a backlog, newest first


def test_urgent_requests_are_refused_only_when_all_are_urgent() -> None:
    q = Admission(2, clock=Clock())
    assert q.offer("S1", urgent=True) == (True, None)
    assert q.offer("S2", urgent=True) == (True, None)
    assert q.offer("S3", urgent=True) == (False, None)
    assert q.offer("x") == (False, None)  # an ordinary request never pushes out a State

def test_stale_requests_are_dropped_and_reported() -> None:
    clock = Clock()
    stale: list[str] = []
    q = Admission(10, max_wait=5.0, lifo_after=100.0, on_stale=stale.append, clock=clock)
    q.offer("old")
    q.offer("old-state", urgent=True)
    clock.now += 6
    q.offer("new")
    assert q.get() == "new"
    assert stale == ["old-state", "old"]


def test_newest_first_while_a_backlog_stands() -> None:
    clock = Clock()
    q = Admission(10, max_wait=5.0, lifo_after=1.0, clock=clock)  # never more than half full here
    q.offer("1")
    q.offer("2")
    assert q.get() == "1"  # no backlog: in order
    clock.now += 2  # "2" has waited 2 s: a standing backlog
    q.offer("3")
    q.offer("4")
    assert [q.get(), q.get()] == ["4", "3"]
    assert q.get() == "2"  # the backlog is gone once nothing newer waits


def test_control_items_first_and_close_after_the_queue() -> None:
    q = Admission(10, clock=Clock())
    q.offer("job")
    q.put_control("reload")
    q.close()
    assert [q.get(), q.get(), q.get()] == ["reload", "job", CLOSED]


def test_two_threads_lose_nothing() -> None:
    q = Admission(64, max_wait=1e9, lifo_after=0.0005)
    rng = random.Random(5)
    admitted: set[int] = set()
    shed: set[int] = set()
    got: list[int] = []

    def consume() -> None:
        while True:
            item = q.get()
            if item is CLOSED:
                return
            got.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(200_000):
        ok, pushed_out = q.offer(i, urgent=rng.random() < 0.1)
        if ok:
            admitted.add(i)
        if pushed_out is not None:
            shed.add(pushed_out)
    q.close()
    consumer.join(60)
    assert not consumer.is_alive()
    assert len(got) == len(set(got)), "an item was handed out twice"
    assert set(got) | shed == admitted and not set(got) & shed, "an admitted item was lost"


def test_several_consumers_lose_nothing_and_all_see_closed() -> None:
    """The evaluating threads of a worker share one queue: each item is handed out once, stale ones are reported
    once, and every consumer ends with CLOSED."""
    clock_lock = threading.Lock()
    ticks = [0.0]

    def clock() -> float:
        with clock_lock:
            ticks[0] += 0.001
            return ticks[0]

    stale: list[int] = []
    q: Admission[int] = Admission(64, max_wait=0.5, lifo_after=0.05, on_stale=stale.append, clock=clock)
    got: list[list[int]] = [[] for _ in range(4)]
    ended: list[object] = []

    def consume(mine: list[int]) -> None:
        while True:
            item = q.get()
            if item is CLOSED:
                ended.append(item)
                return
            assert isinstance(item, int)
            mine.append(item)

    consumers = [threading.Thread(target=consume, args=(mine,)) for mine in got]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # thread switches everywhere, in the middle of taking an item too
    try:
        for consumer in consumers:
            consumer.start()
        rng = random.Random(7)
        admitted: set[int] = set()
        shed: set[int] = set()
        for i in range(100_000):
            ok, pushed_out = q.offer(i, urgent=rng.random() < 0.1)
            if ok:
                admitted.add(i)
            if pushed_out is not None:
                shed.add(pushed_out)
        q.close()
        for consumer in consumers:
            consumer.join(60)
    finally:
        sys.setswitchinterval(switch_interval)
    assert not any(consumer.is_alive() for consumer in consumers) and len(ended) == len(consumers)
    handed_out = [item for mine in got for item in mine]
    assert len(handed_out) == len(set(handed_out)), "an item was handed out twice"
    assert len(stale) == len(set(stale)) and not set(stale) & set(handed_out), "a stale item was handed out"
    assert set(handed_out) | shed | set(stale) == admitted, "an admitted item was lost"
    assert not (set(handed_out) | set(stale)) & shed
    assert stale and all(got), "every consumer took items, and some were stale"


def test_stale_items_are_dropped_once_by_several_consumers() -> None:
    """Consumers dropping a run of stale items at the same time (switching threads in the middle of it) report each
    once and lose none."""
    clock = Clock()
    stale: list[int] = []

    def on_stale(item: int) -> None:
        stale.append(item)
        time.sleep(0)  # let another consumer in

    q: Admission[int] = Admission(20_000, max_wait=5.0, on_stale=on_stale, clock=clock)
    for i in range(20_000):
        q.offer(i, urgent=i % 7 == 0)
    clock.now += 6
    q.close()
    got: list[object] = []
    consumers = [threading.Thread(target=lambda: got.append(q.get())) for _ in range(4)]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for consumer in consumers:
            consumer.start()
        for consumer in consumers:
            consumer.join(60)
    finally:
        sys.setswitchinterval(switch_interval)
    assert got == [CLOSED] * 4
    assert sorted(stale) == list(range(20_000))


def test_every_waiting_consumer_gets_closed() -> None:
    q: Admission[str] = Admission(4)
    ended: list[object] = []
    consumers = [threading.Thread(target=lambda: ended.append(q.get())) for _ in range(3)]
    for consumer in consumers:
        consumer.start()
    q.close()
    for consumer in consumers:
        consumer.join(10)
    assert ended == [CLOSED] * 3


def test_issued_states() -> None:
    clock = Clock()
    states = IssuedStates(ttl=120, max_entries=3, clock=clock)
    for s in (b"a", b"b", b"c", b"d"):
        states.add(s)
    assert not states.valid(b"a") and states.valid(b"d") and len(states) == 3  # bounded: the oldest forgotten
    states.discard(b"d")
    assert not states.valid(b"d")
    assert not states.valid(b"never issued")
    clock.now += 121
    assert not states.valid(b"b")
    states.expire()
    assert len(states) == 0
