"""The wire codec against the values in the protocol document and the three clients' shapes."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from osfs.store.errors import BadName, Corrupt
from osfs.store.nats import wire
from osfs.store.types import (
    EPOCH,
    BucketConfig,
    Link,
    ObjectInfo,
    Placement,
    Republish,
    StreamSource,
)

HELLO_DIGEST = "SHA-256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
EMPTY_DIGEST = "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
NUID = "x0OymRfc9CrgJtGNK2zJ1A"
TS = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def decode(doc: dict | bytes, *, revision: int = 7, timestamp: datetime | None = TS) -> ObjectInfo:
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return wire.decode_meta(payload, bucket="B", revision=revision, timestamp=timestamp)


# ----- names and subjects -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("hello.txt", "aGVsbG8udHh0"),
        ("a", "YQ=="),
        ("dir/file name.bin", "ZGlyL2ZpbGUgbmFtZS5iaW4="),
        ("é", "w6k="),
        ("日本/ü.txt", "5pel5pysL8O8LnR4dA=="),
    ],
)
def test_encode_name_matches_go(name: str, token: str) -> None:
    assert wire.encode_name(name) == token
    assert wire.decode_name(token) == name


def test_decode_name_accepts_unpadded() -> None:
    assert wire.decode_name("YQ") == "a"
    assert wire.decode_name("ZGlyL2ZpbGUgbmFtZS5iaW4") == "dir/file name.bin"


@pytest.mark.parametrize("token", ["!!!", "w6", "_w==", ""])
def test_decode_name_rejects_garbage(token: str) -> None:
    with pytest.raises(Corrupt):
        wire.decode_name(token)


@pytest.mark.parametrize("name", ["", "bad\udcffname"])
def test_encode_name_rejects(name: str) -> None:
    with pytest.raises(BadName):
        wire.encode_name(name)


@given(st.text(min_size=1))
def test_name_round_trip(name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(BadName):
            wire.encode_name(name)
        return
    token = wire.encode_name(name)
    assert "." not in token and " " not in token and "*" not in token and ">" not in token
    assert wire.decode_name(token) == name


def test_subjects() -> None:
    assert wire.stream_name("B") == "OBJ_B"
    assert wire.chunk_subject("B", NUID) == f"$O.B.C.{NUID}"
    assert wire.meta_subject("B", "hello.txt") == "$O.B.M.aGVsbG8udHh0"
    assert wire.meta_wildcard("my-b_1") == "$O.my-b_1.M.>"
    assert wire.chunk_wildcard("my-b_1") == "$O.my-b_1.C.>"
    assert wire.bucket_of_stream("OBJ_x") == "x"
    assert wire.bucket_of_stream("KV_x") is None


@pytest.mark.parametrize("bucket", ["", "a.b", "a b", "abc\n", "a*", "é"])
def test_bad_bucket_names(bucket: str) -> None:
    for fn in (wire.stream_name, wire.meta_wildcard, wire.chunk_wildcard):
        with pytest.raises(BadName):
            fn(bucket)
    with pytest.raises(BadName):
        wire.meta_subject(bucket, "x")
    with pytest.raises(BadName):
        wire.stream_config(BucketConfig(bucket))


@pytest.mark.parametrize("bucket", ["B", "a-much-longer-bucket-name_0123456789" * 3])
def test_name_length_limit(bucket: str) -> None:
    limit = wire.max_name_bytes(bucket)
    assert 2500 < limit < 3000
    longest = wire.meta_subject(bucket, "x" * limit)
    assert len(wire._DIRECT_GET_PREFIX + bucket + "." + longest) <= wire.MAX_SUBJECT_LEN
    with pytest.raises(BadName, match="too long"):
        wire.meta_subject(bucket, "x" * (limit + 1))
    multibyte = "é" * (limit // 2)  # two UTF-8 bytes each
    assert wire.meta_subject(bucket, multibyte)
    with pytest.raises(BadName):
        wire.meta_subject(bucket, multibyte + "é")


@pytest.mark.parametrize("nuid", ["", "a.b", "a*", "a>"])
def test_bad_nuid(nuid: str) -> None:
    with pytest.raises(BadName):
        wire.chunk_subject("B", nuid)


# ----- digests ----------------------------------------------------------------------------


def test_encode_digest() -> None:
    assert wire.encode_digest(hashlib.sha256(b"").digest()) == EMPTY_DIGEST
    assert wire.encode_digest(hashlib.sha256(b"hello").digest()) == HELLO_DIGEST
    with pytest.raises(ValueError):
        wire.encode_digest(b"short")


def test_decode_digest_tolerant_forms() -> None:
    raw = hashlib.sha256(b"hello").digest()
    b64url = base64.urlsafe_b64encode(raw).decode()
    b64std = base64.b64encode(raw).decode()
    assert "+" in b64std or "/" in b64std  # the two alphabets really differ here
    forms = [
        HELLO_DIGEST,
        "SHA-256=" + b64url.rstrip("="),
        "SHA-256=" + b64std,
        "SHA-256=" + b64std.rstrip("="),
        "SHA-256=" + raw.hex(),
        "SHA-256=" + raw.hex().upper(),
        "sha-256=" + b64url,
        b64url,
        raw.hex(),
    ]
    for form in forms:
        assert wire.decode_digest(form) == raw, form


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "SHA-256=",
        "SHA-256=abc",
        "SHA-256=!!!!",
        "SHA-512=" + base64.urlsafe_b64encode(hashlib.sha512(b"").digest()).decode(),
        "MD5=" + base64.urlsafe_b64encode(hashlib.sha256(b"").digest()).decode(),
        "SHA-256=" + base64.urlsafe_b64encode(b"x" * 31).decode(),
        "SHA-256=" + "g" * 64,
    ],
)
def test_decode_digest_unparsable(bad: str) -> None:
    assert wire.decode_digest(bad) is None


@given(st.binary(min_size=32, max_size=32))
def test_digest_round_trip(raw: bytes) -> None:
    s = wire.encode_digest(raw)
    assert s.startswith("SHA-256=") and len(s) == 8 + 44 and s.endswith("=")
    assert wire.decode_digest(s) == raw


# ----- timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05.123456789Z", datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.678Z", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        ("2026-01-02T03:04:05.123456+00:00", datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2026-01-02T05:04:05.5+02:00", datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2026-01-02T00:04:05-03:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02 03:04:05.999999999 +0000 UTC", datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)),
        ("2026-01-02 04:04:05.1 +0100 CET", datetime(2026, 1, 2, 3, 4, 5, 100000, tzinfo=UTC)),
        ("2026-01-02 03:04:05.5 +0000 UTC m=+0.001", datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    got = wire.parse_timestamp(text)
    assert got == expected
    assert got is not None and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-01-02T25:00:00Z", "0001-01-01T00:00:00+01:00"]
)
def test_parse_timestamp_unparsable(text: str) -> None:
    assert wire.parse_timestamp(text) is None


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 1, 1), timezones=st.just(UTC)))
def test_timestamp_round_trip(dt: datetime) -> None:
    assert wire.parse_timestamp(dt.isoformat()) == dt
    assert wire.parse_timestamp(dt.isoformat(timespec="microseconds").replace("+00:00", "123Z")) == dt


# ----- meta: the three example payloads of §2 -------------------------------------------


def test_decode_go_example() -> None:
    payload = (
        b'{"name":"hello.txt","options":{"max_chunk_size":131072},"bucket":"B","nuid":"N","size":5,'
        b'"mtime":"0001-01-01T00:00:00Z","chunks":1,'
        b'"digest":"SHA-256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="}'
    )
    info = wire.decode_meta(payload, bucket="B", revision=3, timestamp=TS)
    assert info == ObjectInfo(
        bucket="B",
        name="hello.txt",
        nuid="N",
        size=5,
        chunks=1,
        digest=HELLO_DIGEST,
        mtime=TS,  # Go's zero time: the server timestamp wins
        max_chunk_size=131072,
        revision=3,
    )


def test_decode_js_example() -> None:
    payload = (
        b'{"bucket":"B","nuid":"N","size":5,"chunks":1,"name":"hello.txt","description":"",'
        b'"options":{"max_chunk_size":131072},"mtime":"2026-01-02T03:04:05.678Z",'
        b'"digest":"SHA-256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=","deleted":false,"revision":99}'
    )
    info = wire.decode_meta(payload, bucket="B", revision=3, timestamp=TS)
    assert info.name == "hello.txt" and info.size == 5 and info.chunks == 1 and info.nuid == "N"
    assert info.mtime == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert info.revision == 3  # the JSON "revision" is JS-internal
    assert info.description == "" and not info.deleted and info.digest == HELLO_DIGEST


def test_decode_nats_py_example() -> None:
    payload = (
        b'{"name": "hello.txt", "bucket": "B", "nuid": "N", "size": 5, '
        b'"mtime": "2026-01-02T03:04:05.123456+00:00", "chunks": 1, '
        b'"digest": "SHA-256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=", "deleted": false, '
        b'"options": {"max_chunk_size": 131072}}'
    )
    info = wire.decode_meta(payload, bucket="B", revision=3, timestamp=TS)
    assert info.mtime == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert (info.size, info.chunks, info.max_chunk_size, info.digest) == (5, 1, 131072, HELLO_DIGEST)


def test_decode_nats_py_delete_marker() -> None:
    doc = {
        "name": "gone.bin",
        "bucket": "B",
        "nuid": NUID,
        "size": 0,
        "mtime": "",
        "chunks": 0,
        "digest": "",
        "deleted": True,
        "options": {"max_chunk_size": 131072},
    }
    info = decode(doc)
    assert info.deleted and info.nuid == NUID and info.size == 0 and info.digest == ""
    assert info.mtime == TS


def test_delete_marker_fields_are_cleared() -> None:
    info = decode(
        {"name": "x", "nuid": NUID, "size": 9, "chunks": 2, "digest": HELLO_DIGEST, "deleted": True}
    )
    assert (info.size, info.chunks, info.digest) == (0, 0, "")


def test_decode_string_headers_are_wrapped() -> None:
    info = decode({"name": "x", "nuid": NUID, "headers": {"Content-Type": "text/plain", "X": ["1", "2"]}})
    assert info.headers == {"Content-Type": ("text/plain",), "X": ("1", "2")}
    assert info.mime == "text/plain"


def test_decode_js_bare_object_link() -> None:
    payload = b'{"name":"ln","bucket":"OTHER","options":{"link":{"bucket":"OTHER","name":"t.txt"}}}'
    info = wire.decode_meta(payload, bucket="B", revision=5, timestamp=None)
    assert info.bucket == "B"  # where the meta lives, not the JS-written target bucket
    assert info.link == Link("OTHER", "t.txt") and not info.link.is_bucket_link
    assert (info.nuid, info.size, info.chunks, info.digest) == ("", 0, 0, "")
    assert info.mtime == EPOCH
    assert info.max_chunk_size is None


@pytest.mark.parametrize(
    "link", [{"bucket": "T"}, {"bucket": "T", "name": ""}, {"bucket": "T", "name": None}]
)
def test_decode_bucket_link(link: dict) -> None:
    info = decode({"name": "ln", "nuid": NUID, "options": {"link": link, "max_chunk_size": 131072}})
    assert info.link == Link("T") and info.link.is_bucket_link


@pytest.mark.parametrize("mtime", [None, "", "0001-01-01T00:00:00Z", "not a time", 12345, "MISSING"])
def test_decode_mtime_fallbacks(mtime: object) -> None:
    doc: dict = {"name": "x", "nuid": NUID}
    if mtime != "MISSING":
        doc["mtime"] = mtime
    assert decode(doc).mtime == TS
    assert decode(doc, timestamp=None).mtime == EPOCH
    naive = TS.replace(tzinfo=None)
    assert decode(doc, timestamp=naive).mtime == TS
    other_zone = TS.astimezone(timezone(timedelta(hours=5)))
    got = decode(doc, timestamp=other_zone).mtime
    assert got == TS and got.utcoffset() == timedelta(0)


def test_decode_real_mtime_wins_over_timestamp() -> None:
    info = decode({"name": "x", "nuid": NUID, "mtime": "2020-05-06T07:08:09Z"})
    assert info.mtime == datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_decode_defaults_and_unknown_keys() -> None:
    info = decode({"name": "x", "future_key": {"a": 1}, "revision": 4, "nuid": None, "options": None})
    assert info == ObjectInfo(
        bucket="B", name="x", nuid="", size=0, chunks=0, digest="", mtime=TS, revision=7
    )


def test_decode_metadata_and_description() -> None:
    info = decode({"name": "x", "nuid": NUID, "description": "d", "metadata": {"k": "v"}})
    assert info.description == "d" and info.metadata == {"k": "v"}


def test_decode_normalizes_readable_digest() -> None:
    raw = hashlib.sha256(b"hello").digest()
    assert decode({"name": "x", "nuid": NUID, "digest": "SHA-256=" + raw.hex()}).digest == HELLO_DIGEST
    # an unreadable digest is kept as written (a full read will then report it)
    assert decode({"name": "x", "nuid": NUID, "digest": "SHA-512=zz"}).digest == "SHA-512=zz"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1,2]",
        b'"name"',
        b"null",
        b"{}",
        b'{"name":""}',
        b'{"name":null}',
        b'{"name":5}',
        b'{"name":"x","size":"5"}',
        b'{"name":"x","size":-1}',
        b'{"name":"x","chunks":"1"}',
        b'{"name":"x","chunks":-3}',
        b'{"name":"x","size":5.5}',
        b'{"name":"x","size":true}',
        b'{"name":"x","options":{"max_chunk_size":"131072"}}',
        b'{"name":"x","options":{"max_chunk_size":-1}}',
        b'{"name":"x","options":[]}',
        b'{"name":"x","options":{"link":"B"}}',
        b'{"name":"x","options":{"link":{"name":"y"}}}',
        b'{"name":"x","headers":{"k":1}}',
        b'{"name":"x","headers":{"k":[1]}}',
        b'{"name":"x","headers":["k"]}',
        b'{"name":"x","metadata":{"k":1}}',
        b'{"name":"x","deleted":"true"}',
        b'{"name":"x","nuid":7}',
        b'{"name":"x","description":["d"]}',
    ],
)
def test_decode_corrupt(payload: bytes) -> None:
    with pytest.raises(Corrupt, match="'BUCK'"):
        wire.decode_meta(payload, bucket="BUCK", revision=1, timestamp=TS)


# ----- meta: encoding in nats.go's shape -------------------------------------------------


def test_encode_go_put_shape_exactly() -> None:
    info = ObjectInfo(
        bucket="B",
        name="hello.txt",
        nuid="N",
        size=5,
        chunks=1,
        digest=HELLO_DIGEST,
        mtime=TS,
        max_chunk_size=131072,
    )
    assert wire.encode_meta(info) == (
        b'{"name":"hello.txt","options":{"max_chunk_size":131072},"bucket":"B","nuid":"N","size":5,'
        b'"mtime":"0001-01-01T00:00:00Z","chunks":1,'
        b'"digest":"SHA-256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="}'
    )


def test_encode_full_shape() -> None:
    info = ObjectInfo(
        bucket="B",
        name="d/é.txt",
        nuid=NUID,
        size=0,
        chunks=0,
        digest="",
        mtime=TS,
        deleted=True,
        description="desc",
        headers={"Content-Type": ("text/plain",)},
        metadata={"mode": "0644"},
        max_chunk_size=1024,
    )
    doc = json.loads(wire.encode_meta(info))
    assert list(doc) == [
        "name",
        "description",
        "headers",
        "metadata",
        "options",
        "bucket",
        "nuid",
        "size",
        "mtime",
        "chunks",
        "deleted",
    ]
    assert doc["headers"] == {"Content-Type": ["text/plain"]}
    assert doc["deleted"] is True and doc["name"] == "d/é.txt"
    assert b" " not in wire.encode_meta(info).replace(b"d/\xc3\xa9.txt", b"")


def test_encode_links() -> None:
    obj_link = ObjectInfo("B", "ln", NUID, 0, 0, "", TS, link=Link("T", "t.txt"))
    bucket_link = ObjectInfo("B", "bl", NUID, 0, 0, "", TS, link=Link("T"))
    assert json.loads(wire.encode_meta(obj_link))["options"] == {"link": {"bucket": "T", "name": "t.txt"}}
    assert json.loads(wire.encode_meta(bucket_link))["options"] == {"link": {"bucket": "T"}}
    bare = json.loads(wire.encode_meta(ObjectInfo("B", "x", NUID, 0, 0, "", TS)))
    assert "options" not in bare and "digest" not in bare and "deleted" not in bare
    assert "description" not in bare and "headers" not in bare and "metadata" not in bare


_names = st.text(min_size=1, max_size=40)
_info = st.builds(
    ObjectInfo,
    bucket=st.just("B"),
    name=_names,
    nuid=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=22, max_size=22),
    size=st.integers(0, 2**53),
    chunks=st.integers(0, 2**32 - 1),
    digest=st.binary(min_size=32, max_size=32).map(wire.encode_digest) | st.just(""),
    mtime=st.just(TS),
    deleted=st.booleans(),
    description=st.text(max_size=20),
    headers=st.dictionaries(
        st.text(min_size=1, max_size=10), st.lists(st.text(max_size=10), min_size=1).map(tuple)
    ),
    metadata=st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10)),
    link=st.none()
    | st.builds(Link, bucket=st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), name=st.none() | _names),
    max_chunk_size=st.none() | st.integers(1, 2**32 - 1),
    revision=st.integers(1, 2**40),
)


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def test_encode_escapes_and_sorts_like_go() -> None:
    info = ObjectInfo(
        bucket="B",
        name="a<b>&c\u2028.txt",
        nuid="N",
        size=1,
        chunks=1,
        digest="",
        mtime=TS,
        headers={"Z": ("1",), "A": ("x&y",)},
        metadata={"b": "2", "a": "1"},
    )
    assert wire.encode_meta(info) == (
        b'{"name":"a\\u003cb\\u003e\\u0026c\\u2028.txt","headers":{"A":["x\\u0026y"],"Z":["1"]},'
        b'"metadata":{"a":"1","b":"2"},"bucket":"B","nuid":"N","size":1,'
        b'"mtime":"0001-01-01T00:00:00Z","chunks":1}'
    )
    assert wire.decode_meta(wire.encode_meta(info), bucket="B", revision=0, timestamp=TS) == info


def test_encode_rejects_surrogates() -> None:
    with pytest.raises(BadName):
        wire.encode_meta(ObjectInfo("B", "ok", "N", 0, 0, "", TS, description="bad\udcff"))


@given(_info)
def test_meta_round_trip(info: ObjectInfo) -> None:
    if info.deleted:
        info = ObjectInfo(**{**info.__dict__, "size": 0, "chunks": 0, "digest": ""})
    try:
        payload = wire.encode_meta(info)
    except BadName:
        texts = [info.name, info.description, *info.headers, *info.metadata, *info.metadata.values()]
        texts += [v for values in info.headers.values() for v in values]
        assert any(not t.isascii() and _has_surrogate(t) for t in texts)
        return
    back = wire.decode_meta(payload, bucket="B", revision=info.revision, timestamp=TS)
    assert back == info


# ----- stream config ----------------------------------------------------------------------


def test_stream_config_defaults_like_go() -> None:
    assert wire.stream_config(BucketConfig("B")) == {
        "name": "OBJ_B",
        "subjects": ["$O.B.C.>", "$O.B.M.>"],
        "max_age": 0,
        "max_bytes": -1,
        "storage": "file",
        "num_replicas": 1,
        "discard": "new",
        "allow_rollup_hdrs": True,
        "allow_direct": True,
        "compression": "none",
    }


def test_stream_config_options() -> None:
    cfg = BucketConfig(
        "B",
        description="media",
        max_object_size=10 << 20,
        max_bytes=1 << 30,
        storage="memory",
        replicas=3,
        ttl=1.5,
        compression="s2",
        placement=Placement("east", ("ssd",)),
        republish=Republish(dest="repub.>", headers_only=True),
        metadata={"owner": "me"},
    )
    out = wire.stream_config(cfg)
    assert out["description"] == "media"
    assert out["max_age"] == 1_500_000_000 and isinstance(out["max_age"], int)
    assert out["max_bytes"] == 1 << 30
    assert out["storage"] == "memory" and out["num_replicas"] == 3 and out["compression"] == "s2"
    assert out["placement"] == {"cluster": "east", "tags": ["ssd"]}
    assert out["republish"] == {"src": ">", "dest": "repub.>", "headers_only": True}
    assert out["metadata"] == {"owner": "me", "osfs.max_object_size": str(10 << 20)}
    assert "mirror" not in out and "sources" not in out


def test_stream_config_zero_replicas_and_bytes_like_go() -> None:
    out = wire.stream_config(BucketConfig("B", replicas=0, max_bytes=0))
    assert out["num_replicas"] == 1 and out["max_bytes"] == -1


def test_stream_config_mirror() -> None:
    out = wire.stream_config(BucketConfig("M", mirror=StreamSource("SRC")))
    assert "subjects" not in out
    assert "mirror_direct" not in out  # its rewritten subjects must not answer the origin's gets
    assert out["allow_direct"] is True
    assert out["mirror"] == {
        "name": "OBJ_SRC",
        "subject_transforms": [{"src": "$O.SRC.>", "dest": "$O.M.>"}],
    }
    prefixed = wire.stream_config(BucketConfig("M", mirror=StreamSource("OBJ_SRC", opt_start_seq=5)))
    assert prefixed["mirror"]["name"] == "OBJ_SRC" and prefixed["mirror"]["opt_start_seq"] == 5


def test_stream_config_sources() -> None:
    out = wire.stream_config(
        BucketConfig(
            "S",
            sources=(
                StreamSource("A"),
                StreamSource(
                    "B", filter_subject="$O.B.M.>", external_api="$JS.hub.API", external_deliver="d"
                ),
            ),
        )
    )
    assert out["subjects"] == ["$O.S.C.>", "$O.S.M.>"]
    assert out["sources"] == [
        {"name": "OBJ_A", "subject_transforms": [{"src": "$O.A.>", "dest": "$O.S.>"}]},
        {"name": "OBJ_B", "filter_subject": "$O.B.M.>", "external": {"api": "$JS.hub.API", "deliver": "d"}},
    ]


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (BucketConfig("B", storage="disk"), "storage"),
        (BucketConfig("B", compression="gzip"), "compression"),
        (BucketConfig("B", replicas=6), "replicas"),
        (BucketConfig("B", replicas=-1), "replicas"),
        (BucketConfig("B", ttl=-1), "ttl"),
        (BucketConfig("B", mirror=StreamSource("A"), sources=(StreamSource("C"),)), "mirror"),
    ],
)
def test_stream_config_invalid(cfg: BucketConfig, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        wire.stream_config(cfg)


def test_stream_config_bad_source_name() -> None:
    with pytest.raises(BadName):
        wire.stream_config(BucketConfig("B", mirror=StreamSource("a.b")))


# ----- bucket status ----------------------------------------------------------------------


def test_bucket_status_from_stream_info() -> None:
    info = {
        "config": {
            "name": "OBJ_media",
            "description": "d",
            "subjects": ["$O.media.C.>", "$O.media.M.>"],
            "max_age": 2_500_000_000,
            "max_bytes": 1 << 30,
            "storage": "memory",
            "num_replicas": 3,
            "compression": "s2",
            "sealed": True,
            "metadata": {"osfs.max_object_size": "1048576", "owner": "me", "_nats.ver": "2.15.1"},
        },
        "state": {"messages": 4, "bytes": 12345},
        "created": "2026-01-01T00:00:00Z",
    }
    status = wire.bucket_status(info, objects=2)
    assert status.bucket == "media" and status.description == "d"
    assert status.ttl == 2.5 and status.storage == "memory" and status.replicas == 3
    assert status.compression == "s2" and status.sealed and status.read_only
    assert status.size == 2 and status.bytes == 12345
    assert status.max_object_size == 1 << 20 and status.max_bytes == 1 << 30
    assert not status.mirror
    assert status.metadata == {"owner": "me", "_nats.ver": "2.15.1"}
    assert status.stream_info is info or dict(status.stream_info) == info


def test_bucket_status_minimal_and_mirror() -> None:
    status = wire.bucket_status({"config": {"name": "OBJ_m", "mirror": {"name": "OBJ_s"}}, "state": {}})
    assert status.bucket == "m" and status.compression == "none" and status.ttl == 0
    assert status.size == -1 and status.bytes == 0 and status.max_object_size == -1 and status.max_bytes == -1
    assert status.mirror and status.read_only and not status.sealed and status.replicas == 1


def test_bucket_status_round_trips_stream_config() -> None:
    cfg = BucketConfig("B", description="x", max_object_size=77, ttl=3, compression="s2", metadata={"a": "b"})
    status = wire.bucket_status({"config": wire.stream_config(cfg), "state": {"bytes": 1}})
    assert (status.bucket, status.description, status.ttl, status.compression) == ("B", "x", 3.0, "s2")
    assert status.max_object_size == 77 and status.metadata == {"a": "b"}


# ----- ack subjects -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("$JS.ACK.OBJ_B.cons.1.42.1.1700000000000000000.9", (42, 9)),
        ("$JS.ACK.OBJ_B.cons.3.100.3.1700000000000000000.0", (100, 0)),
        ("$JS.ACK.hub.ACCHASH.OBJ_B.cons.1.42.1.1700000000000000000.9.rAnd0m", (42, 9)),
        ("$JS.ACK._.ACCHASH.OBJ_B.cons.1.43.2.1700000000000000000.8", (43, 8)),
    ],
)
def test_parse_ack_reply(subject: str, expected: tuple[int, int]) -> None:
    assert wire.parse_ack_reply(subject) == expected


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "_INBOX.abc",
        "$JS.ACK.OBJ_B.cons.1.42.1.170",
        "$JS.ACK.d.h.OBJ_B.cons.1.42.1.17",
        "$JS.ACK.OBJ_B.cons.1.x.1.1700.9",
        "$JS.ACK.OBJ_B.cons.1.42.1.1700.-9",
        "$JS.NAK.OBJ_B.cons.1.42.1.1700.9",
    ],
)
def test_parse_ack_reply_rejects(subject: str) -> None:
    assert wire.parse_ack_reply(subject) is None


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "a/b", "bucket": "b", "nuid": "N1", "size": 3, "mtime": "0001-01-01T00:00:00Z", "chunks": 1},
        {"name": "a", "nuid": "N1", "size": 3, "chunks": 1, "digest": "SHA-256=" + "A" * 43 + "="},
        {"name": "a", "size": 3, "digest": "sha-256=" + "0" * 64},
        {"name": "a", "digest": "SHA-256=" + "A" * 43},
        {"name": "a", "mtime": "2024-05-06T07:08:09.123456789Z"},
        {"name": "a", "size": "3"},
        {"name": "a", "size": -1},
        {"name": "a", "chunks": True},
        {"name": ""},
        {"name": 5},
        {"nuid": "N1"},
    ],
)
def test_plain_metas_decode_as_field_by_field(doc: dict) -> None:
    """The quick path for metas of plain fields gives what reading them one by one gives
    (an unknown key sends a meta down the field-by-field path)."""

    def decode(d: dict) -> ObjectInfo | str:
        try:
            return wire.decode_meta(
                json.dumps(d).encode(), bucket="b", revision=7, timestamp="2025-01-02T03:04:05.123456789Z"
            )
        except Corrupt as exc:
            return type(exc).__name__

    assert decode(doc) == decode({**doc, "unknown": 1})
