"""The Object Store wire format (ADR-20) as nats.go writes it, read as any client writes it.

Pure functions, no I/O: subjects and stream names of a bucket, the base64url name encoding
of meta subjects, the ``SHA-256=`` digest string, the meta JSON, server timestamps, the
stream config sent on create, bucket status from STREAM.INFO, and JetStream ack subjects.

Writers here produce exactly what nats.go produces, so every official client can read what
osfs writes. Readers accept every shape the official clients (current and older ones) are
known to write: JS links without nuid or size, nats-py ``{k: "v"}`` headers and ``""``
mtimes, unpadded or hex digests. A meta that no client could have meant is ``Corrupt``.

One module of about 650 lines on purpose: it is the whole wire format in one place, each
encoder next to its decoder, pure functions with no state to split along.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import BadName, Corrupt, NameTooLong
from ..semantics import check_bucket, encode_digest
from ..types import (
    EPOCH,
    BucketConfig,
    BucketStatus,
    Link,
    ObjectInfo,
    StreamSource,
    valid_bucket_name,
)

#: Prefix of every object store's stream name.
STREAM_PREFIX = "OBJ_"

#: What nats.go writes as ``mtime`` (Go's zero ``time.Time``); readers use the server time.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"

#: Stream metadata key under which osfs keeps a bucket's max object size.
MAX_OBJECT_SIZE_KEY = "osfs.max_object_size"

#: Replica counts JetStream accepts.
MAX_REPLICAS = 5

#: Longest subject osfs sends. The server's control-line limit (4096 bytes by default) covers
#: the whole ``HPUB <subject> <reply> <sizes>`` line, and a longer one makes it drop the
#: connection; 128 bytes are kept for the rest of that line.
MAX_SUBJECT_LEN = 4096 - 128

#: What Direct Get puts before a meta subject (``$JS.API.DIRECT.GET.OBJ_<bucket>.<subject>``).
_DIRECT_GET_PREFIX = "$JS.API.DIRECT.GET." + STREAM_PREFIX

STORAGE_TYPES = ("file", "memory")
COMPRESSIONS = ("none", "s2")

# ----- names and subjects ---------------------------------------------------------------


def stream_name(bucket: str) -> str:
    """``OBJ_<bucket>``; ``BadName`` for an invalid bucket name."""
    check_bucket(bucket)
    return STREAM_PREFIX + bucket


def bucket_of_stream(stream: str) -> str | None:
    """The bucket a stream name backs (``OBJ_x`` → ``x``), None for other streams."""
    if stream.startswith(STREAM_PREFIX) and valid_bucket_name(stream[len(STREAM_PREFIX) :]):
        return stream[len(STREAM_PREFIX) :]
    return None


def chunk_subject(bucket: str, nuid: str) -> str:
    """``$O.<bucket>.C.<nuid>``: the subject of one object version's chunks."""
    check_bucket(bucket)
    if not nuid or any(c in nuid for c in ".*> \t\r\n"):
        raise BadName(f"invalid nuid {nuid!r}")
    return f"$O.{bucket}.C.{nuid}"


def meta_subject(bucket: str, name: str) -> str:
    """``$O.<bucket>.M.<encode_name(name)>``: the subject of one name's meta messages.

    ``NameTooLong`` when the name is longer than :func:`max_name_bytes` allows (every
    request about the name must fit the server's control-line limit).
    """
    check_bucket(bucket)
    subject = f"$O.{bucket}.M.{encode_name(name)}"
    if len(subject) > _max_meta_subject_len(bucket):
        raise NameTooLong(
            f"object name of {len(name.encode('utf-8'))} bytes is too long for bucket {bucket!r} "
            f"(at most {max_name_bytes(bucket)})"
        )
    return subject


def _max_meta_subject_len(bucket: str) -> int:
    return MAX_SUBJECT_LEN - len(_DIRECT_GET_PREFIX) - len(bucket) - 1


def max_name_bytes(bucket: str) -> int:
    """The longest object name (UTF-8 bytes) whose meta subject osfs can use in ``bucket``."""
    check_bucket(bucket)
    token_len = _max_meta_subject_len(bucket) - len(f"$O.{bucket}.M.")
    return token_len // 4 * 3


def meta_wildcard(bucket: str) -> str:
    """``$O.<bucket>.M.>``: every meta of the bucket."""
    check_bucket(bucket)
    return f"$O.{bucket}.M.>"


def chunk_wildcard(bucket: str) -> str:
    """``$O.<bucket>.C.>``: every chunk of the bucket."""
    check_bucket(bucket)
    return f"$O.{bucket}.C.>"


def encode_name(name: str) -> str:
    """Padded base64url of the UTF-8 name, as nats.go and nats-py encode it.

    ``BadName`` for an empty name or one that is not valid Unicode (lone surrogates).
    """
    if not isinstance(name, str) or not name:
        raise BadName("object name must be a non-empty string")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadName(f"object name {name!r} is not valid UTF-8") from exc
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_name(token: str) -> str:
    """The object name a meta-subject token encodes (padding optional); ``Corrupt`` if none."""
    try:
        raw = base64.urlsafe_b64decode(_pad(token).encode("ascii"))
        name = raw.decode("utf-8")
    except (ValueError, UnicodeError) as exc:
        raise Corrupt(f"meta subject token {token!r} is not a base64url UTF-8 name") from exc
    if not name:
        raise Corrupt("meta subject token encodes an empty name")
    return name


def _pad(s: str) -> str:
    return s + "=" * (-len(s) % 4)


# ----- digests --------------------------------------------------------------------------

_DIGEST_LABEL_RE = re.compile(r"(?i)sha-?256[=:]")
_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")
_B64_RE = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
#: A digest already in nats.go's form: the label, then 32 bytes in padded base64url (whose
#: 43rd character carries 4 bits, so its low 2 bits are zero: one of ``AEIMQUYcgkosw048``).
_CANONICAL_DIGEST_RE = re.compile(r"SHA-256=[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]=")


def normal_digest(s: str) -> str:
    """``s`` in nats.go's form (``SHA-256=`` + padded base64url) when it can be read, else
    ``s`` unchanged (a meta's digest is checked when the object is read)."""
    if _CANONICAL_DIGEST_RE.fullmatch(s):
        return s
    raw = decode_digest(s)
    return encode_digest(raw) if raw is not None else s


def decode_digest(s: str) -> bytes | None:
    """The 32 digest bytes of a digest string, or None when it cannot be read.

    Accepts the ``SHA-256=`` label (any case, or none), base64 padded or not in either
    alphabet, and hex. Any other algorithm label, or a value that is not 32 bytes, is None.
    """
    if not isinstance(s, str):
        return None
    s = s.strip()
    label = _DIGEST_LABEL_RE.match(s)
    if label:
        s = s[label.end() :]
    elif "=" in s.rstrip("="):
        return None  # another algorithm's label
    if _HEX_RE.fullmatch(s):
        return bytes.fromhex(s)
    if not _B64_RE.fullmatch(s):
        return None
    body = s.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(_pad(body), validate=True)
    except binascii.Error:
        return None
    return raw if len(raw) == 32 else None


# ----- timestamps -----------------------------------------------------------------------

_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2}|)"
    r"(?:\s+[A-Za-z]{1,6})?(?:\s+m=[+-][0-9.]+)?"
)
_UTC = UTC


def _server_time(s: str) -> datetime | None:
    """The common server form ``2006-01-02T15:04:05.999999999Z`` (7 to 9 fraction digits,
    UTC) read quickly; None for any other form."""
    if len(s) < 28 or s[-1] != "Z" or s[19] != "." or s[10] != "T" or not s[20:-1].isdigit():
        return None
    try:
        return datetime.fromisoformat(s[:26]).replace(tzinfo=_UTC)
    except ValueError:
        return None


def parse_timestamp(s: str) -> datetime | None:
    """A timezone-aware UTC datetime from a server or client timestamp; None if unparsable.

    Accepts RFC 3339 with any number of fractional digits (truncated to microseconds) and
    ``Z`` or an offset, and Go's ``time.String()`` form
    ``2006-01-02 15:04:05.999999999 +0000 UTC`` (with or without a monotonic ``m=`` suffix).
    A time without an offset is taken as UTC. Times that do not fit ``datetime`` are None.
    """
    if not isinstance(s, str):
        return None
    fast = _server_time(s)
    if fast is not None:
        return fast
    m = _RFC3339_RE.fullmatch(s.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    if zone in ("", "Z", "z"):
        offset = timedelta(0)
    else:
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if zone[0] == "-":
            offset = -offset
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
        return (local - offset).replace(tzinfo=_UTC)
    except (ValueError, OverflowError):
        return None


# ----- meta JSON ------------------------------------------------------------------------


def encode_meta(info: ObjectInfo) -> bytes:
    """The meta message payload for ``info``, in nats.go's shape and key order.

    ``description``, ``headers``, ``metadata``, ``digest`` are omitted when empty, ``deleted``
    unless true, ``options`` when it has neither a link nor a chunk size. Headers are always
    lists. ``mtime`` is always Go's zero time: readers take the message's server timestamp.
    Like Go's ``json.Marshal``, map keys are sorted and ``<``, ``>``, ``&``, U+2028 and
    U+2029 are escaped, so the bytes equal nats.go's. ``BadName`` if any text is not valid
    Unicode (lone surrogates).
    """
    doc: dict[str, Any] = {"name": info.name}
    if info.description:
        doc["description"] = info.description
    if info.headers:
        doc["headers"] = {k: list(info.headers[k]) for k in sorted(info.headers)}
    if info.metadata:
        doc["metadata"] = {k: info.metadata[k] for k in sorted(info.metadata)}
    options: dict[str, Any] = {}
    if info.link is not None:
        link: dict[str, str] = {"bucket": info.link.bucket}
        if info.link.name:
            link["name"] = info.link.name
        options["link"] = link
    if info.max_chunk_size:
        options["max_chunk_size"] = info.max_chunk_size
    if options:
        doc["options"] = options
    doc["bucket"] = info.bucket
    doc["nuid"] = info.nuid
    doc["size"] = info.size
    doc["mtime"] = GO_ZERO_TIME
    doc["chunks"] = info.chunks
    if info.digest:
        doc["digest"] = info.digest
    if info.deleted:
        doc["deleted"] = True
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.translate(_GO_JSON_ESCAPES).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadName(f"meta of {info.name!r} contains text that is not valid Unicode") from exc


#: Characters Go's ``json.Marshal`` escapes inside strings (they never occur outside them).
_GO_JSON_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"}


#: The keys of a meta with nothing but a live object's plain fields (most metas).
_PLAIN_KEYS = frozenset(("name", "bucket", "nuid", "size", "mtime", "chunks", "digest"))


def _plain_meta(doc: dict, bucket: str, revision: int, timestamp: datetime | str | None) -> ObjectInfo | None:
    """:func:`decode_meta` of a meta with only plain fields of the right types, quickly;
    None for any other (read field by field then)."""
    if not _PLAIN_KEYS.issuperset(doc):
        return None
    name, nuid, digest = doc.get("name"), doc.get("nuid", ""), doc.get("digest", "")
    size, chunks = doc.get("size", 0), doc.get("chunks", 0)
    if (
        type(name) is not str
        or not name
        or type(nuid) is not str
        or type(digest) is not str
        or type(size) is not int
        or type(chunks) is not int
        or size < 0
        or chunks < 0
    ):
        return None
    return ObjectInfo(
        bucket=bucket,
        name=name,
        nuid=nuid,
        size=size,
        chunks=chunks,
        digest=normal_digest(digest) if digest else "",
        mtime=_mtime(doc.get("mtime"), timestamp),
        revision=revision,
    )


def _mtime(written: object, timestamp: datetime | str | None) -> datetime:
    """A meta's mtime: the one written when it is a real time, else the server's."""
    mtime = parse_timestamp(written) if isinstance(written, str) and written != GO_ZERO_TIME else None
    if mtime is not None and mtime.year > 1:
        return mtime
    if isinstance(timestamp, str):
        timestamp = parse_timestamp(timestamp)
    if timestamp is None:
        return EPOCH
    if timestamp.tzinfo is None:
        return timestamp.replace(tzinfo=_UTC)
    return timestamp.astimezone(_UTC)


def _where(bucket: str, revision: int) -> str:
    return f"bucket {bucket!r}: malformed object meta (revision {revision})"


class _MetaReader:
    """Typed field access to one meta document; every type error is ``Corrupt``."""

    def __init__(self, doc: dict, bucket: str, revision: int) -> None:
        self.doc = doc
        self.bucket = bucket
        self.revision = revision

    def fail(self, what: str) -> Corrupt:
        return Corrupt(f"{_where(self.bucket, self.revision)}: {what}")

    def string(self, key: str, doc: Mapping | None = None) -> str:
        value = (self.doc if doc is None else doc).get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(f"{key!r} is not a string: {value!r}")
        return value

    def count(self, key: str, doc: Mapping | None = None) -> int:
        value = (self.doc if doc is None else doc).get(key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{key!r} is not a non-negative integer: {value!r}")
        return value

    def flag(self, key: str) -> bool:
        value = self.doc.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(f"{key!r} is not a boolean: {value!r}")
        return value

    def mapping(self, key: str, doc: Mapping | None = None) -> dict:
        value = (self.doc if doc is None else doc).get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{key!r} is not an object: {value!r}")
        return value

    def headers(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for k, v in self.mapping("headers").items():
            values = [v] if isinstance(v, str) else v
            if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
                raise self.fail(f"header {k!r} is not a string or a list of strings: {v!r}")
            out[k] = tuple(values)
        return out

    def metadata(self) -> dict[str, str]:
        md = self.mapping("metadata")
        for k, v in md.items():
            if not isinstance(v, str):
                raise self.fail(f"metadata {k!r} is not a string: {v!r}")
        return md

    def link(self, options: Mapping) -> Link | None:
        raw = options.get("link")
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise self.fail(f"options.link is not an object: {raw!r}")
        target_bucket = self.string("bucket", raw)
        if not target_bucket:
            raise self.fail("options.link has no bucket")
        return Link(target_bucket, self.string("name", raw) or None)


def decode_meta(
    payload: bytes, *, bucket: str, revision: int, timestamp: datetime | str | None
) -> ObjectInfo:
    """Parse a meta message from any client into an :class:`ObjectInfo`.

    ``bucket`` is the bucket the message was read from (the JSON's own ``bucket`` is
    ignored: JS links carry their target's), ``revision`` its stream sequence and
    ``timestamp`` its server time (naive means UTC; a string is parsed only when it is
    needed, see :func:`parse_timestamp`). ``mtime`` is the JSON's when that is a real time (after
    year 1), else ``timestamp``, else the epoch. Missing keys take their empty defaults;
    unknown keys are ignored; ``{k: "v"}`` headers are wrapped into lists; a readable digest
    is normalized to nats.go's form; delete markers have size, chunks and digest cleared.

    ``Corrupt`` (naming the bucket) for invalid JSON, a non-object, a missing or empty
    ``name``, or a field of the wrong type (numbers as strings, negative numbers, ...).
    """
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeError) as exc:
        raise Corrupt(f"{_where(bucket, revision)}: invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise Corrupt(f"{_where(bucket, revision)}: not a JSON object")
    plain = _plain_meta(doc, bucket, revision, timestamp)
    if plain is not None:
        return plain
    r = _MetaReader(doc, bucket, revision)
    name = r.string("name")
    if not name:
        raise r.fail("no name")
    options = r.mapping("options")
    max_chunk_size = r.count("max_chunk_size", options) or None
    deleted = r.flag("deleted")
    size, chunks, digest = r.count("size"), r.count("chunks"), r.string("digest")
    if deleted:
        size, chunks, digest = 0, 0, ""
    elif digest:
        digest = normal_digest(digest)
    mtime = _mtime(doc.get("mtime"), timestamp)
    return ObjectInfo(
        bucket=bucket,
        name=name,
        nuid=r.string("nuid"),
        size=size,
        chunks=chunks,
        digest=digest,
        mtime=mtime,
        deleted=deleted,
        description=r.string("description"),
        headers=r.headers(),
        metadata=r.metadata(),
        link=r.link(options),
        max_chunk_size=max_chunk_size,
        revision=revision,
    )


# ----- stream config and status ---------------------------------------------------------


def _source_stream(name: str) -> tuple[str, str]:
    """(stream name, bucket name) of a mirror/source given as ``b`` or ``OBJ_b``."""
    bucket = name[len(STREAM_PREFIX) :] if name.startswith(STREAM_PREFIX) else name
    check_bucket(bucket)
    return STREAM_PREFIX + bucket, bucket


def _source_config(src: StreamSource, bucket: str) -> dict[str, Any]:
    stream, src_bucket = _source_stream(src.name)
    out: dict[str, Any] = {"name": stream}
    if src.opt_start_seq:
        out["opt_start_seq"] = src.opt_start_seq
    if src.opt_start_time:
        out["opt_start_time"] = src.opt_start_time
    if src.filter_subject:
        out["filter_subject"] = src.filter_subject
    elif src_bucket != bucket:
        out["subject_transforms"] = [{"src": f"$O.{src_bucket}.>", "dest": f"$O.{bucket}.>"}]
    if src.external_api:
        external = {"api": src.external_api}
        if src.external_deliver:
            external["deliver"] = src.external_deliver
        out["external"] = external
    return out


def stream_config(cfg: BucketConfig) -> dict[str, Any]:
    """The STREAM.CREATE config for ``cfg``, as nats.go sends it for the same options.

    Beyond nats.go: ``max_object_size`` is kept in the stream metadata under
    ``osfs.max_object_size``; ``mirror`` and ``sources`` name buckets (``b`` or ``OBJ_b``)
    and get a subject transform ``$O.<src>.>`` → ``$O.<bucket>.>`` (unless they filter), so
    the copies read as this bucket's objects. A mirror has no subjects and mirror direct get.

    ``BadName`` for an invalid bucket name; ``ValueError`` for an unknown storage type or
    compression, replicas outside 1..5, a negative TTL, or both mirror and sources.
    """
    check_bucket(cfg.bucket)
    if cfg.storage not in STORAGE_TYPES:
        raise ValueError(f"storage must be 'file' or 'memory', not {cfg.storage!r}")
    if cfg.compression not in COMPRESSIONS:
        raise ValueError(f"compression must be 'none' or 's2', not {cfg.compression!r}")
    replicas = cfg.replicas or 1
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"replicas must be between 1 and {MAX_REPLICAS}, not {cfg.replicas}")
    if cfg.ttl < 0:
        raise ValueError(f"ttl must not be negative, not {cfg.ttl}")
    if cfg.mirror is not None and cfg.sources:
        raise ValueError("a bucket cannot both mirror and source other buckets")
    out: dict[str, Any] = {"name": STREAM_PREFIX + cfg.bucket}
    if cfg.description:
        out["description"] = cfg.description
    if cfg.mirror is None:
        out["subjects"] = [chunk_wildcard(cfg.bucket), meta_wildcard(cfg.bucket)]
    out["max_age"] = round(cfg.ttl * 1_000_000_000)
    out["max_bytes"] = cfg.max_bytes if cfg.max_bytes > 0 else -1
    out["storage"] = cfg.storage
    out["num_replicas"] = replicas
    out["discard"] = "new"
    out["allow_rollup_hdrs"] = True
    out["allow_direct"] = True
    out["compression"] = cfg.compression
    if cfg.placement is not None:
        placement: dict[str, Any] = {"cluster": cfg.placement.cluster or ""}
        if cfg.placement.tags:
            placement["tags"] = list(cfg.placement.tags)
        out["placement"] = placement
    if cfg.republish is not None:
        republish: dict[str, Any] = {"src": cfg.republish.src or ">", "dest": cfg.republish.dest}
        if cfg.republish.headers_only:
            republish["headers_only"] = True
        out["republish"] = republish
    if cfg.mirror is not None:
        out["mirror"] = _source_config(cfg.mirror, cfg.bucket)
        # No mirror_direct: the mirror rewrites subjects to its own bucket's, so answering
        # the origin's direct gets with them would break every reader of the origin.
    if cfg.sources:
        out["sources"] = [_source_config(s, cfg.bucket) for s in cfg.sources]
    metadata = dict(cfg.metadata)
    if cfg.max_object_size > 0:
        metadata[MAX_OBJECT_SIZE_KEY] = str(cfg.max_object_size)
    if metadata:
        out["metadata"] = metadata
    return out


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def bucket_status(stream_info: dict, *, objects: int = -1) -> BucketStatus:
    """A :class:`BucketStatus` from the raw STREAM.INFO response of ``OBJ_<bucket>``.

    ``objects`` is the number of live objects when the caller counted them (-1: unknown).
    ``metadata`` leaves out ``osfs.max_object_size`` (it is ``max_object_size``).
    """
    config = stream_info.get("config") or {}
    state = stream_info.get("state") or {}
    name = config.get("name", "")
    bucket = name[len(STREAM_PREFIX) :] if name.startswith(STREAM_PREFIX) else name
    metadata = dict(config.get("metadata") or {})
    max_object_size = _int(metadata.pop(MAX_OBJECT_SIZE_KEY, None), -1)
    max_bytes = _int(config.get("max_bytes"), -1)
    return BucketStatus(
        bucket=bucket,
        description=config.get("description") or "",
        ttl=_int(config.get("max_age"), 0) / 1e9,
        storage=config.get("storage") or "file",
        replicas=_int(config.get("num_replicas"), 1) or 1,
        compression=config.get("compression") or "none",
        sealed=bool(config.get("sealed", False)),
        size=objects,
        bytes=_int(state.get("bytes"), 0),
        max_object_size=max_object_size if max_object_size > 0 else -1,
        max_bytes=max_bytes if max_bytes > 0 else -1,
        mirror="mirror" in config and config["mirror"] is not None,
        metadata=metadata,
        stream_info=stream_info,
    )


# ----- JetStream ack subjects -----------------------------------------------------------

_V1_TOKENS = 9
_V2_MIN_TOKENS = 11


def parse_ack_reply(subject: str) -> tuple[int, int] | None:
    """``(stream_seq, num_pending)`` from a JetStream delivery's reply subject, else None.

    v1: ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>``;
    v2: ``$JS.ACK.<domain>.<acchash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>``
    followed by an optional random token (11 or more tokens, as nats.go accepts).
    """
    if not isinstance(subject, str):
        return None
    tokens = subject.split(".")
    if len(tokens) < _V1_TOKENS or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    if len(tokens) == _V1_TOKENS:
        sseq, pending = tokens[5], tokens[8]
    elif len(tokens) >= _V2_MIN_TOKENS:
        sseq, pending = tokens[7], tokens[10]
    else:
        return None
    if not (sseq.isascii() and sseq.isdigit() and pending.isascii() and pending.isdigit()):
        return None
    return int(sseq), int(pending)
