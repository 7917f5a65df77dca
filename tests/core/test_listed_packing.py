"""A listing record's packed numbers read back as given, for sizes and revisions of every
length the packing uses (the short ones that ``size`` reads by hand, and the long ones)."""

from __future__ import annotations

from osfs.listed import Listed, nuid_key, nuid_of

EDGES = [0, 1, 127, 128, 300, 2**14 - 1, 2**14, 54_321, 2**21 - 1, 2**21, 2**28, 2**40 + 5]


def test_packed_numbers_round_trip() -> None:
    for n in EDGES:
        for mtime_ns in (0, -5, 1_700_000_000_123_456_789):
            rec = Listed("b", "d/f", "NUID", n, mtime_ns, 2 * n + 1)
            assert (rec.size, rec.revision, rec.mtime_ns) == (n, 2 * n + 1, mtime_ns), (n, mtime_ns)


def test_nuid_keys_are_one_to_one() -> None:
    nuids = ["", "\x00", "\x00" * 22, "a", "a" * 21, "a" * 22, "a" * 23, "\x7f" + "a" * 21, "\x80" + "a" * 21]
    nuids += ["é" * 11, "NUIDNUIDNUIDNUIDNUIDNU", "\udcff" * 3, "\xff" + "a" * 20]
    keys = [nuid_key(n) for n in nuids]
    assert len(set(keys)) == len(nuids)
    assert [nuid_of(k) for k in keys] == nuids
