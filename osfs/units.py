"""Parsing of human-written sizes and durations (``128K``, ``1MiB``, ``30d``, ``1h30m``)."""

from __future__ import annotations

import re

_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B?)\s*", re.IGNORECASE)
_SIZE_POW = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}

_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
}


def parse_size(text: str) -> int:
    """Bytes in ``text``: a plain number, or one with K/M/G/T/P (binary: 1K = 1024).

    ``-1`` (and ``unlimited``) mean no limit and return -1. Raises ``ValueError`` with a message
    naming the bad text.
    """
    t = text.strip()
    if t.lower() in ("-1", "unlimited", "none"):
        return -1
    m = _SIZE_RE.fullmatch(t)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 4096, 128K, 1MiB, 2G)")
    number, unit = float(m.group(1)), m.group(2).upper()
    return int(number * 1024 ** _SIZE_POW[unit])


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a plain number of seconds or units like ``30d``, ``1h30m``, ``500ms``.

    ``0`` means none. Raises ``ValueError`` with a message naming the bad text.
    """
    t = text.strip().lower()
    if _NUMBER_RE.fullmatch(t):
        return float(t)
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(t) or not t:
        raise ValueError(f"not a duration: {text!r} (examples: 90, 30s, 1h30m, 30d)")
    return total


def format_size(n: int) -> str:
    """``n`` bytes for people: ``512 B``, ``1.5 KiB``, ``3.0 GiB``; ``unlimited`` for -1."""
    if n < 0:
        return "unlimited"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest whole units: ``30d``, ``1h30m``, ``45s``; ``-`` for 0."""
    if seconds <= 0:
        return "-"
    total = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts) or f"{seconds:g}s"
