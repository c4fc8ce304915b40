"""The spool file: order, bounds, crash recovery, slots and adoption (real files)."""

from __future__ import annotations

from pathlib import Path

from eventcollector.client._spool import Spool


def lines(prefix: str, n: int) -> list[bytes]:
    return [f'{{"id": "{prefix}{i}"}}'.encode() for i in range(n)]


def drain(spool: Spool, batch: int = 7) -> list[bytes]:
    out: list[bytes] = []
    while spool.count:
        got = spool.peek(batch, 1 << 20)
        assert got, "count says more but nothing can be read"
        out.extend(got)
        spool.commit()
    return out


def test_append_peek_commit_in_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    spool.open()
    assert spool.dir is not None
    assert spool.append(lines("a", 30)) == 30
    assert spool.append(lines("b", 5)) == 5
    assert len(list(spool.dir.glob("*.jsonl"))) > 1
    first = spool.peek(4, 1 << 20)
    assert spool.peek(4, 1 << 20) == first  # same lines until committed
    assert drain(spool) == lines("a", 30) + lines("b", 5)
    assert spool.count == 0
    assert spool.size == 0
    assert list(spool.dir.glob("*.jsonl")) == []
    spool.close()


def test_bounded_size_drops_newest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=200)
    spool.open()
    written = spool.append(lines("x", 100))
    assert 0 < written < 100
    assert spool.size <= 200
    assert drain(spool) == lines("x", written)
    spool.close()


def test_prepend_goes_before_everything_unsent(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=60)
    spool.open()
    spool.append(lines("a", 10))
    spool.peek(3, 1 << 20)
    spool.commit()  # a0..a2 sent
    assert spool.prepend(lines("p", 2)) == 2
    spool.append(lines("b", 2))
    assert drain(spool) == lines("p", 2) + lines("a", 10)[3:] + lines("b", 2)
    spool.close()


def test_reopen_resumes_after_the_last_commit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=80)
    spool.open()
    spool.append(lines("a", 20))
    spool.peek(5, 1 << 20)
    spool.commit()
    spool.peek(5, 1 << 20)  # peeked, never acknowledged: must come back
    spool.close()

    again = Spool(tmp_path, max_bytes=1 << 20)
    again.open()
    assert again.adopted == 15
    assert drain(again) == lines("a", 20)[5:]
    again.close()


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    spool.append(lines("a", 3))
    assert spool.dir is not None
    segment = sorted(spool.dir.glob("*.jsonl"))[-1]
    spool.close()
    with segment.open("ab") as f:
        f.write(b'{"id": "torn')  # a crash in the middle of a write
    again = Spool(tmp_path, max_bytes=1 << 20)
    again.open()
    again.append(lines("b", 1))
    assert drain(again) == [*lines("a", 3), *lines("b", 1)]
    again.close()


def test_two_owners_get_two_slots_and_a_dead_slot_is_adopted(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1 << 20)
    first.open()
    second = Spool(tmp_path, max_bytes=1 << 20)
    second.open()
    assert first.dir != second.dir  # flock: a second owner never shares a slot
    second.append(lines("s", 4))
    second.close()  # its owner is gone, the events stay on disk

    third = Spool(tmp_path, max_bytes=1 << 20)
    third.open()  # takes the free slot again, or adopts it
    assert third.adopted == 4
    assert drain(third) == lines("s", 4)
    first.close()
    third.close()


def test_orphan_slots_of_dead_processes_are_adopted(tmp_path: Path) -> None:
    alive = Spool(tmp_path, max_bytes=1 << 20)
    alive.open()  # slot 0 stays taken
    dead = [Spool(tmp_path, max_bytes=1 << 20) for _ in range(2)]
    for n, spool in enumerate(dead):
        spool.open()  # slots 1 and 2
        spool.append(lines(f"d{n}-", 3))
    dead[1].peek(1, 1 << 20)
    dead[1].commit()  # d1-0 was delivered before the process died
    for spool in dead:
        spool.close()

    heir = Spool(tmp_path, max_bytes=1 << 20)
    heir.open()  # slot 1 (its own leftovers) and adopts slot 2
    assert heir.adopted == 5
    assert drain(heir) == lines("d0-", 3) + lines("d1-", 3)[1:]
    assert not list((tmp_path / "2").glob("*.jsonl"))
    heir.close()
    alive.close()
