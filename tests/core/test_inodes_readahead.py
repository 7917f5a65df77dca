"""Inode table (stability, lookups, forget, rename) and the read-ahead detector."""

from __future__ import annotations

from osfs.inodes import ROOT_INODE, InodeTable
from osfs.readahead import ReadAhead


def test_same_key_same_inode_until_forgotten() -> None:
    t = InodeTable(("", ""))
    a = t.ino_for(("b", "x"))
    t.remember(a, 2)
    assert t.ino_for(("b", "x")) == a
    assert t.ino_for(("b", "y")) != a
    t.forget(a, 1)
    assert t.find(("b", "x")) == a
    t.forget(a, 1)
    assert t.find(("b", "x")) is None
    assert t.ino_for(("b", "x")) != a
    t.forget(ROOT_INODE, 10)
    assert t.key_of(ROOT_INODE) == ("", "")


def test_open_handle_keeps_inode() -> None:
    t = InodeTable(("", ""))
    a = t.ino_for(("b", "x"))
    t.remember(a)
    t.open(a)
    t.forget(a, 1)
    assert t.key_of(a) == ("b", "x")
    t.close(a)
    assert not t.known(a)


def test_move_carries_subtree_and_detaches_target() -> None:
    t = InodeTable(("", ""))
    d, f, other, victim = (t.ino_for(k) for k in [("b", "d"), ("b", "d/f"), ("b", "dx"), ("b", "e")])
    for ino in (d, f, other, victim):
        t.remember(ino)
    t.move(("b", "d"), ("b", "e"))
    assert t.key_of(d) == ("b", "e") and t.key_of(f) == ("b", "e/f")
    assert t.key_of(other) == ("b", "dx")
    assert t.key_of(victim) is None and t.known(victim)
    t.forget(victim, 1)
    assert not t.known(victim)


def test_readahead_grows_while_sequential_and_resets_on_seek() -> None:
    r = ReadAhead(initial=100, maximum=800)
    hints = [r.hint(off, 10) for off in range(0, 70, 10)]
    assert hints == [100, 200, 400, 800, 800, 800, 800]
    assert r.hint(5000, 10) == 0
    assert r.hint(5010, 10) == 100
    assert ReadAhead(initial=100).hint(50, 10) == 0
