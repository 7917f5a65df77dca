"""A listing record's packed numbers read back as given, for sizes and revisions of every
length the packing uses (the short ones that ``size`` reads by hand, and the long ones)."""

from __future__ import annotations

from osfs.listed import Listed

EDGES = [0, 1, 127, 128, 300, 2**14 - 1, 2**14, 54_321, 2**21 - 1, 2**21, 2**28, 2**40 + 5]


def test_packed_numbers_round_trip() -> None:
    for n in EDGES:
        for mtime_ns in (0, -5, 1_700_000_000_123_456_789):
            rec = Listed("b", "d/f", "NUID", n, mtime_ns, 2 * n + 1)
            assert (rec.size, rec.revision, rec.mtime_ns) == (n, 2 * n + 1, mtime_ns), (n, mtime_ns)
