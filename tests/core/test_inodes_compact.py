"""The inode table's compact state: keys of several buckets, the lookup count and file type
kept together (and not at all for the common state), open handles beside them."""

from __future__ import annotations

import stat

from osfs.inodes import ROOT_INODE, TOP, InodeTable


def test_keys_of_the_home_bucket_and_of_others_round_trip() -> None:
    table = InodeTable(TOP)
    home = table.ino_for(("a", "x/y"))
    other = table.ino_for(("b", "x/y"))
    bucket_dir = table.ino_for(("b", ""))
    assert len({home, other, bucket_dir, ROOT_INODE}) == 4
    assert table.key(ROOT_INODE) == TOP
    assert table.key(home) == ("a", "x/y") and table.key(other) == ("b", "x/y")
    assert table.key(bucket_dir) == ("b", "")
    assert table.find(("a", "x/y")) == home and table.find(("c", "x/y")) is None
    table.move(("b", "x"), ("b", "z"))
    assert table.key(other) == ("b", "z/y") and table.find(("b", "x/y")) is None
    assert table.key(home) == ("a", "x/y")


def test_lookups_and_kind_are_kept_whatever_their_values() -> None:
    table = InodeTable(("a", ""))
    assert table.lookups(ROOT_INODE) == 1
    f = table.ino_for(("a", "f"))
    assert table.lookups(f) == 0 and table.kind(f) == 0
    table.set_kind(f, stat.S_IFREG | 0o644)
    table.remember(f)
    assert table.lookups(f) == 1 and table.kind(f) == stat.S_IFREG
    table.remember(f, 40)
    table.set_kind(f, stat.S_IFLNK)
    assert table.lookups(f) == 41 and table.kind(f) == stat.S_IFLNK
    table.forget(f, 40)
    assert table.lookups(f) == 1 and table.kind(f) == stat.S_IFLNK
    table.set_kind(f, stat.S_IFREG)
    table.forget(f, 1)
    assert not table.known(f) and table.find(("a", "f")) is None
    assert table.lookups(f) == 0 and table.kind(f) == 0


def test_an_open_inode_outlives_its_lookups_and_its_key() -> None:
    table = InodeTable(("a", ""))
    f = table.ino_for(("a", "f"))
    table.remember(f)
    table.open(f)
    table.open(f)
    table.forget(f, 1)
    table.detach(("a", "f"))
    assert table.known(f) and table.key_of(f) is None
    table.close(f)
    assert table.known(f)
    table.close(f)
    assert not table.known(f)
    assert table.ino_for(("a", "f")) != f
