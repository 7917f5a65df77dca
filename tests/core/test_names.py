"""The object name → tree rules of osfs.names."""

from __future__ import annotations

import errno
import logging
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.names import bad_component, bad_new_name, build_tree, split_name
from osfs.store.types import ObjectInfo


def info(name: str, deleted: bool = False) -> ObjectInfo:
    return ObjectInfo("b", name, "n" + name, 0, 0, "", datetime.now(UTC), deleted=deleted)


def test_prefixes_become_directories_and_markers_make_empty_ones() -> None:
    tree = build_tree([info("a/b/c"), info("a/d"), info("e/"), info("top")])
    assert sorted(tree.dirs[""].names()) == ["a", "e", "top"]
    assert sorted(tree.dirs["a"].names()) == ["b", "d"]
    assert tree.dirs["e"].children == {}
    assert tree.dirs["e"].node.info is not None
    assert tree.dirs["a"].node.info is None
    assert tree.node("a/b/c") is not None and not tree.node("a/b/c").is_dir
    assert tree.dirs[""].subdirs == 2


def test_unshowable_names_are_skipped_and_warned_once(caplog) -> None:
    bad = ["a//b", "/x", "./y", "z/..", "n\0ul", "l" * 256, "/"]
    warned: set[str] = set()
    with caplog.at_level(logging.WARNING):
        tree = build_tree([info(n) for n in bad] + [info("ok")], warned)
        build_tree([info(n) for n in bad], warned)
    assert tree.dirs[""].names() == ["ok"]
    assert warned == set(bad)
    assert len([r for r in caplog.records if "is not shown" in r.message]) == len(bad)
    for name in bad:
        assert isinstance(split_name(name), str)


def test_file_beside_directory_gets_suffix() -> None:
    tree = build_tree([info("a"), info("a/x"), info("a.~file"), info("b"), info("b/")])
    root = tree.dirs[""].children
    assert root["a"].is_dir
    assert root["a.~file"].info.name == "a"
    assert root["a.~file.~file"].info.name == "a.~file"
    assert root["b"].is_dir and root["b.~file"].info.name == "b"
    assert tree.path_of("a") == "a.~file"


def test_delete_markers_are_not_shown() -> None:
    tree = build_tree([info("gone", deleted=True), info("here")])
    assert tree.dirs[""].names() == ["here"]


names = st.lists(
    st.text(alphabet=st.sampled_from("ab/.~\0"), min_size=1, max_size=8), max_size=25, unique=True
)


@settings(max_examples=300, deadline=None)
@given(names)
def test_every_showable_object_appears_exactly_once(objects: list[str]) -> None:
    tree = build_tree([info(n) for n in objects])
    shown = []
    for d in tree.dirs.values():
        nodes = [d.child(n) for n in d.names()]
        shown += [c.info.name for c in nodes if c is not None and not c.is_dir]
        if d.node.info is not None:
            shown.append(d.node.info.name)
    showable = [n for n in objects if not isinstance(split_name(n), str)]
    assert sorted(shown) == sorted(showable)
    assert build_tree([info(n) for n in reversed(objects)]).by_object == tree.by_object


def shape(tree) -> dict:
    return {
        p: (
            d.subdirs,
            d.node.object_name,
            {n: (c.is_dir, c.object_name) for n in d.names() if (c := d.child(n)) is not None},
        )
        for p, d in tree.dirs.items()
    } | {"by_object": dict(tree.by_object)}


ops = st.lists(
    st.tuples(st.booleans(), st.text(alphabet=st.sampled_from("ab/.~"), min_size=1, max_size=6)), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_incremental_updates_match_a_full_build(steps: list[tuple[bool, str]]) -> None:
    live: dict[str, ObjectInfo] = {}
    tree = build_tree([])
    for add, name in steps:
        if add:
            live[name] = info(name)
        else:
            live.pop(name, None)
        if tree is not None:
            ok = tree.add(live[name]) if add else tree.remove(name)
            if not ok:
                tree = None
        if tree is None:
            tree = build_tree(live.values())
        assert shape(tree) == shape(build_tree(live.values()))


def test_bad_component_gives_the_errno_with_its_reason() -> None:
    long = bad_component("é" * 128)  # 256 bytes in UTF-8
    assert long is not None and long.errno == errno.ENAMETOOLONG
    assert bad_component("é" * 127 + "x") is None
    for part in ["", ".", "..", "a\0b", "a/b"]:
        bad = bad_component(part)
        assert bad is not None and bad.errno == errno.EINVAL and bad.why, part
    not_utf8 = bad_new_name(b"\xff".decode("utf-8", "surrogateescape"))
    assert not_utf8 is not None and not_utf8.errno == errno.EINVAL
