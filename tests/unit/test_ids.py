"""Time-ordered ObjectId-shaped ids (contract §1.7)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from abmhub import ids
from abmhub.ids import is_object_id, new_object_id


def _parts(object_id: str) -> tuple[int, str, int]:
    """(seconds, process hex, counter) of an id."""
    return int(object_id[:8], 16), object_id[8:18], int(object_id[18:], 16)


def test_format() -> None:
    object_id = new_object_id()
    assert is_object_id(object_id), f"{object_id!r} should be 24 lowercase hex characters"


def test_leading_bytes_are_the_current_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_seconds_now", lambda: 0x6A21B885)
    object_id = new_object_id()
    assert object_id.startswith("6a21b885"), f"{object_id!r} should start with the second in hex"


def test_ids_are_unique() -> None:
    made = [new_object_id() for _ in range(100_000)]
    assert len(set(made)) == len(made), "100k ids made in a row should all differ"


def test_ids_of_one_second_sort_in_creation_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_seconds_now", lambda: 1_777_543_200)
    # A counter start far from the wrap, and this process already seeded.
    new_object_id()
    monkeypatch.setattr(ids, "_counter", 0)
    made = [new_object_id() for _ in range(10_000)]
    assert made == sorted(made), "ids made in one second should sort in the order they were made"
    assert [_parts(i)[2] for i in made[:3]] == [1, 2, 3], "the counter should count up by one"
    assert len({_parts(i)[1] for i in made}) == 1, "one process should use one random middle part"


def test_ids_of_later_seconds_sort_later(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(1_777_543_200, 1_777_543_300))
    monkeypatch.setattr(ids, "_seconds_now", lambda: next(clock))
    new_object_id()
    monkeypatch.setattr(ids, "_counter", 2**24 - 3)  # the counter wraps along the way
    made = [new_object_id() for _ in range(10)]
    assert made == sorted(made), "a later second should sort later even when the counter wraps"


def test_counter_wraps_at_three_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    new_object_id()
    monkeypatch.setattr(ids, "_counter", 2**24 - 2)
    counters = [_parts(new_object_id())[2] for _ in range(3)]
    assert counters == [2**24 - 1, 0, 1], f"the counter should wrap from 0xffffff to 0, got {counters}"


def test_counter_starts_at_a_random_value(monkeypatch: pytest.MonkeyPatch) -> None:
    starts = set()
    for fake_pid in range(1, 6):
        monkeypatch.setattr(os, "getpid", lambda pid=fake_pid: -pid)
        starts.add(_parts(new_object_id())[2])
    assert len(starts) > 1, "five fresh processes should not all start their counter at one value"


def test_a_new_process_chooses_new_random_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = _parts(new_object_id())[1]
    monkeypatch.setattr(os, "getpid", lambda: -1)
    child = _parts(new_object_id())[1]
    assert child != parent, "a different process id should re-choose the 5 random bytes"


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    parent_id = new_object_id()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave without running pytest's teardown
        try:
            os.write(write_end, new_object_id().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert is_object_id(child_id), f"the child should have made an id, got {child_id!r}"
    assert _parts(child_id)[1] != _parts(parent_id)[1], (
        "a forked child should choose its own random bytes instead of sharing its parent's"
    )


def test_thread_safety() -> None:
    per_thread = 10_000
    results: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(results))

    def make(into: list[str]) -> None:
        start.wait()
        into.extend(new_object_id() for _ in range(per_thread))

    threads = [threading.Thread(target=make, args=(into,)) for into in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = [object_id for into in results for object_id in into]
    assert len(made) == 8 * per_thread, "every thread should have made its ids"
    assert len(set(made)) == len(made), "ids made by 8 threads at once should all differ"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6a21b8855a81c58936372c2d", True),
        ("000000000000000000000000", True),
        ("6A21B8855A81C58936372C2D", False),
        ("6a21b8855a81c58936372c2", False),
        ("6a21b8855a81c58936372c2d0", False),
        ("6a21b8855a81c58936372c2g", False),
        ("6a21b8855a81c58936372c2d\n", False),
        ("", False),
        ("٠" * 24, False),
        (None, False),
    ],
)
def test_is_object_id(text: str, expected: bool) -> None:
    assert is_object_id(text) is expected, f"is_object_id({text!r}) should be {expected}"


def test_uuid7_is_a_canonical_version_7_uuid_in_time_order() -> None:
    import time
    import uuid

    earlier = ids.new_uuid7()
    time.sleep(0.002)
    for _ in range(1000):
        text = ids.new_uuid7()
        parsed = uuid.UUID(text)
        assert str(parsed) == text, f"{text!r} should be the canonical lowercase 8-4-4-4-12 form"
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122, f"{text!r} should be an RFC 9562 v7 UUID"
    assert earlier[:13] < text[:13], "a later millisecond should sort after an earlier one"


def test_a_batch_of_uuid7s_is_canonical_random_and_of_this_millisecond() -> None:
    import time
    import uuid

    before = time.time_ns() // 1_000_000
    made = ids.new_uuid7s(5_000)
    after = time.time_ns() // 1_000_000
    assert len(made) == 5_000 and len(set(made)) == 5_000, "a batch should hold distinct UUIDs"
    variants = set()
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text, f"{text!r} should be the canonical lowercase 8-4-4-4-12 form"
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122, f"{text!r} should be an RFC 9562 v7 UUID"
        assert before <= parsed.int >> 80 <= after, f"{text!r} should carry the current millisecond"
        variants.add(text[19])
    assert variants == set("89ab"), f"the two random bits beside the variant should vary, saw {sorted(variants)}"


def test_a_batch_of_object_ids_counts_on_from_the_last_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_seconds_now", lambda: 1_777_543_200)
    new_object_id()
    monkeypatch.setattr(ids, "_counter", 2**24 - 3)
    batch = ids.new_object_ids(4)
    following = new_object_id()
    assert [_parts(i)[2] for i in (*batch, following)] == [2**24 - 2, 2**24 - 1, 0, 1, 2], (
        "a batch should take the next counters (wrapping at three bytes) and the next id should follow it"
    )
    assert all(is_object_id(i) for i in batch), f"{batch} should all be 24 lowercase hex characters"
    assert len({_parts(i)[:2] for i in batch}) == 1, "one batch should share the second and the process bytes"
