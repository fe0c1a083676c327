"""The S3 client (s3/) against a real MinIO, driven through build/tests/s3op.

Every result is checked with an independent client (mc or boto3), never only with s3op.
"""

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from tests.harness.checks import sha256_bytes as sha256
from tests.harness.checks import sha256_file
from tests.harness.minio import Mc, MinioServer, free_port, random_bucket_name

MiB = 1 << 20


# -- helpers ---------------------------------------------------------------------------------


def write_random(path, size):
    """Writes size random bytes to path and returns them."""
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def multipart_etag(data, part_size):
    """The ETag S3 gives a multipart object: md5 of the parts' md5 digests, "-" part count."""
    digests = [hashlib.md5(data[i:i + part_size]).digest()
               for i in range(0, max(len(data), 1), part_size)]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def expect_ok(res):
    assert res.ok, res.describe()
    return res


def expect_error(res, errno, status=None):
    assert res.returncode == 1, res.describe()
    err = res.error()
    assert err is not None, f"no parsable error line\n{res.describe()}"
    assert err.errno == errno, res.describe()
    if status is not None:
        assert err.status == status, res.describe()
    return err


def parse_list(stdout):
    """s3op list output -> [("F", key, size, mtime, etag) | ("D", prefix)]."""
    entries = []
    for line in stdout.decode().split("\n"):
        if not line:
            continue
        if line.startswith("D\t"):
            entries.append(("D", line[2:]))
        else:
            kind, size, mtime, etag, key = line.split("\t", 4)
            assert kind == "F", line
            entries.append(("F", key, int(size), int(mtime), etag))
    return entries


def boto_list(boto, bucket, prefix="", delimiter=""):
    """ListObjectsV2 through boto3, every page: the reference listing."""
    files, prefixes = [], []
    kwargs = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    for page in boto.get_paginator("list_objects_v2").paginate(**kwargs):
        for obj in page.get("Contents", []):
            files.append(("F", obj["Key"], obj["Size"], int(obj["LastModified"].timestamp()),
                          obj["ETag"].strip('"')))
        prefixes += [("D", p["Prefix"]) for p in page.get("CommonPrefixes", [])]
    return files, prefixes


def boto_get(boto, bucket, key):
    return boto.get_object(Bucket=bucket, Key=key)["Body"].read()


def boto_exists(boto, bucket, key):
    try:
        boto.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise


def put_many(boto, bucket, keys, body_for):
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda k: boto.put_object(Bucket=bucket, Key=k, Body=body_for(k)), keys))


def wait_until(predicate, timeout, interval=0.005):
    """Polls predicate until it is true or timeout seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def bytes_read_by(pid):
    """rchar of /proc/PID/io: what the process read with read()/pread() so far."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def file_size(path):
    try:
        return path.stat().st_size
    except OSError:
        return 0


# -- HeadBucket ------------------------------------------------------------------------------


def test_head_bucket_existing(s3op, bucket):
    expect_ok(s3op("head-bucket", bucket))


def test_head_bucket_missing_is_enoent(s3op, mc):
    name = random_bucket_name("missing")
    expect_error(s3op("head-bucket", name), "ENOENT", 404)
    assert not mc.exists(name)


# -- PutObject -------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["put", "put-buf"])
def test_put_matches_mc(s3op, mc, bucket, tmp_path, cmd):
    data = write_random(tmp_path / "in", MiB + 7)
    res = expect_ok(s3op(cmd, bucket, "obj/put.bin", tmp_path / "in"))
    got = mc.cat(f"{bucket}/obj/put.bin")
    assert sha256(got) == sha256(data)
    stat = mc.stat(f"{bucket}/obj/put.bin")
    assert stat["size"] == len(data)
    assert res.fields()["etag"] == stat["etag"] == hashlib.md5(data).hexdigest()


def test_put_overwrites(s3op, mc, bucket, tmp_path):
    mc.put_bytes(f"{bucket}/k", b"old content, longer than the new one")
    (tmp_path / "in").write_bytes(b"new")
    expect_ok(s3op("put", bucket, "k", tmp_path / "in"))
    assert mc.cat(f"{bucket}/k") == b"new"


def test_put_into_missing_bucket_is_enoent(s3op, tmp_path, mc):
    (tmp_path / "in").write_bytes(b"x")
    name = random_bucket_name("missing")
    expect_error(s3op("put", name, "k", tmp_path / "in"), "ENOENT", 404)
    assert not mc.exists(name)


# -- empty objects ---------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["put", "put-buf"])
def test_zero_byte_object(s3op, mc, boto, bucket, tmp_path, cmd):
    (tmp_path / "empty").write_bytes(b"")
    expect_ok(s3op(cmd, bucket, "dir/empty", tmp_path / "empty"))

    assert mc.stat(f"{bucket}/dir/empty")["size"] == 0
    assert mc.cat(f"{bucket}/dir/empty") == b""

    head = expect_ok(s3op("head", bucket, "dir/empty")).fields()
    assert head["size"] == "0"
    assert head["etag"] == hashlib.md5(b"").hexdigest()

    out = tmp_path / "out"
    out.write_bytes(b"stale")  # s3op opens OUT with O_TRUNC
    res = expect_ok(s3op("get", bucket, "dir/empty", out))
    assert res.fields()["got"] == "0"
    assert out.read_bytes() == b""

    # Range requests on an empty object get 416 from S3; the client must turn that into 0 bytes.
    res = expect_ok(s3op("get", bucket, "dir/empty", out, 0, 10))
    assert res.fields()["got"] == "0"
    assert expect_ok(s3op("get-buf", bucket, "dir/empty", 0, 10)).stdout == b""

    entries = parse_list(expect_ok(s3op("list", bucket, "dir/")).stdout)
    assert [(e[0], e[1], e[2]) for e in entries] == [("F", "dir/empty", 0)]
    assert boto.head_object(Bucket=bucket, Key="dir/empty")["ContentLength"] == 0


# -- GetObject and ranges --------------------------------------------------------------------

RANGE_SIZE = MiB + 3


@pytest.fixture(scope="module")
def range_object(mc, tmp_path_factory):
    """(bucket, key, data): one object for all the range tests, uploaded with mc."""
    name = random_bucket_name("range")
    mc.mb(name)
    path = tmp_path_factory.mktemp("range") / "obj"
    write_random(path, RANGE_SIZE)
    mc.put(path, f"{name}/r/obj")
    data = mc.cat(f"{name}/r/obj")  # the reference bytes, as an independent client sees them
    assert len(data) == RANGE_SIZE
    try:
        yield name, "r/obj", data
    finally:
        mc.rb(name)


N = RANGE_SIZE
# (id, offset, length or None for "to the end")
RANGES = [
    ("first-byte", 0, 1),
    ("last-byte", N - 1, 1),
    ("whole", 0, N),
    ("whole-to-end", 0, None),
    ("tail", 1000, None),
    ("middle", 4095, 8193),
    ("last-4k", N - 4096, 4096),
    ("ends-beyond-end", N - 5, 100),
    ("offset-is-size", N, 1),
    ("offset-is-size-to-end", N, None),
    ("past-end", N + 10, 5),
    ("far-past-end", 1 << 40, 5),
    ("zero-length", 10, 0),
    ("zero-length-at-end", N, 0),
]


def _expected_slice(data, off, length):
    return data[off:] if length is None else data[off:off + length]


@pytest.mark.parametrize("off,length", [r[1:] for r in RANGES], ids=[r[0] for r in RANGES])
def test_range_get_fd(s3op, range_object, tmp_path, off, length):
    bucket, key, data = range_object
    out = tmp_path / "out"
    args = ["get", bucket, key, out, off] + ([] if length is None else [length])
    res = expect_ok(s3op(*args))
    want = _expected_slice(data, off, length)
    assert int(res.fields()["got"]) == len(want)
    assert out.read_bytes() == want
    if want:
        assert int(res.fields()["size"]) == N


@pytest.mark.parametrize("off,length", [r[1:] for r in RANGES], ids=[r[0] for r in RANGES])
def test_range_get_buf(s3op, range_object, off, length):
    bucket, key, data = range_object
    # get-buf always takes a length; "to the end" becomes a buffer larger than the object.
    res = expect_ok(s3op("get-buf", bucket, key, off, N + 10 if length is None else length))
    assert res.stdout == _expected_slice(data, off, length)


def test_get_fd_20mib(s3op, mc, bucket, tmp_path):
    src = tmp_path / "src"
    data = write_random(src, 20 * MiB)
    mc.put(src, f"{bucket}/big/20m")
    out = tmp_path / "out"
    res = expect_ok(s3op("get", bucket, "big/20m", out))
    assert res.fields() == {"got": str(len(data)), "size": str(len(data))}
    assert sha256_file(out) == sha256(data)


def test_get_missing_key_is_enoent(s3op, bucket, tmp_path):
    err = expect_error(s3op("get", bucket, "no/such/key", tmp_path / "out"), "ENOENT", 404)
    assert err.code == "NoSuchKey"
    expect_error(s3op("get-buf", bucket, "no/such/key", 0, 10), "ENOENT", 404)


def test_get_missing_bucket_is_enoent(s3op, tmp_path):
    err = expect_error(s3op("get", random_bucket_name("missing"), "k", tmp_path / "out"),
                       "ENOENT", 404)
    assert err.code == "NoSuchBucket"


def test_get_if_match(s3op, boto, bucket, tmp_path):
    """-m ETAG (If-Match): the listed version reads; once the key is overwritten, that
    version's GET is ESTALE (412), from get (to an fd) and get-buf alike, and writes nothing."""
    first = os.urandom(70_000)
    etag = boto.put_object(Bucket=bucket, Key="v/obj", Body=first)["ETag"].strip('"')
    out = tmp_path / "out"
    expect_ok(s3op("-m", etag, "get", bucket, "v/obj", out))
    assert out.read_bytes() == first
    second = os.urandom(50_000)
    boto.put_object(Bucket=bucket, Key="v/obj", Body=second)
    out.unlink()
    expect_error(s3op("-m", etag, "get", bucket, "v/obj", out), "ESTALE", 412)
    assert out.stat().st_size == 0
    expect_error(s3op("-m", etag, "get-buf", bucket, "v/obj", 100, 10), "ESTALE", 412)
    now = boto.head_object(Bucket=bucket, Key="v/obj")["ETag"].strip('"')
    assert expect_ok(s3op("-m", now, "get-buf", bucket, "v/obj", 0, 60_000)).stdout == second


# -- HeadObject ------------------------------------------------------------------------------


def test_head_matches_mc_stat(s3op, mc, boto, bucket, tmp_path):
    data = write_random(tmp_path / "in", 123457)
    mc.put(tmp_path / "in", f"{bucket}/h/obj")
    head = expect_ok(s3op("head", bucket, "h/obj")).fields()
    stat = mc.stat(f"{bucket}/h/obj")
    assert int(head["size"]) == stat["size"] == len(data)
    assert head["etag"] == stat["etag"]
    ref = boto.head_object(Bucket=bucket, Key="h/obj")
    assert int(head["mtime"]) == int(ref["LastModified"].timestamp())
    assert abs(int(head["mtime"]) - time.time()) < 600


def test_head_missing_key_is_enoent(s3op, bucket):
    expect_error(s3op("head", bucket, "nope"), "ENOENT", 404)


# -- DeleteObject ----------------------------------------------------------------------------


def test_delete(s3op, mc, bucket):
    mc.put_bytes(f"{bucket}/d/gone", b"bye")
    mc.put_bytes(f"{bucket}/d/stays", b"hi")
    expect_ok(s3op("del", bucket, "d/gone"))
    assert not mc.exists(f"{bucket}/d/gone")
    assert mc.cat(f"{bucket}/d/stays") == b"hi"


def test_delete_missing_key_succeeds(s3op, bucket):
    expect_ok(s3op("del", bucket, "never/existed"))


def test_delete_in_missing_bucket_is_enoent(s3op):
    expect_error(s3op("del", random_bucket_name("missing"), "k"), "ENOENT", 404)


# -- CopyObject ------------------------------------------------------------------------------


def test_copy_same_bucket(s3op, mc, bucket, tmp_path):
    data = write_random(tmp_path / "in", 3 * MiB + 1)
    mc.put(tmp_path / "in", f"{bucket}/src/a")
    res = expect_ok(s3op("copy", bucket, "src/a", bucket, "dst/b"))
    assert sha256(mc.cat(f"{bucket}/dst/b")) == sha256(data)
    assert res.fields()["etag"] == mc.stat(f"{bucket}/dst/b")["etag"]
    assert mc.cat(f"{bucket}/src/a") == data


def test_copy_across_buckets(s3op, mc, bucket):
    other = random_bucket_name()
    mc.mb(other)
    try:
        mc.put_bytes(f"{bucket}/x", b"payload")
        expect_ok(s3op("copy", bucket, "x", other, "y/z"))
        assert mc.cat(f"{other}/y/z") == b"payload"
    finally:
        mc.rb(other)


def test_copy_missing_source_is_enoent(s3op, mc, bucket):
    expect_error(s3op("copy", bucket, "nope", bucket, "dst"), "ENOENT", 404)
    assert not mc.exists(f"{bucket}/dst")


# -- ListObjectsV2 ---------------------------------------------------------------------------

TREE = {
    "dir/a": b"1",
    "dir/b": b"22",
    "dir/sub/c": b"333",
    "dir/sub/d": b"4444",  # not empty: boto3 stalls 30 s on the PUT after an empty one
    "dir/sub2/e": b"55555",
    "dirx": b"not under dir/",
    "other/x": b"x",
    "top": b"t",
}


@pytest.fixture
def tree_bucket(boto, bucket):
    for key, body in TREE.items():
        boto.put_object(Bucket=bucket, Key=key, Body=body)
    return bucket


def test_list_prefix_recursive(s3op, boto, tree_bucket):
    entries = parse_list(expect_ok(s3op("list", tree_bucket, "dir/")).stdout)
    files, prefixes = boto_list(boto, tree_bucket, "dir/")
    assert prefixes == []
    assert entries == files
    assert [e[1] for e in entries] == ["dir/a", "dir/b", "dir/sub/c", "dir/sub/d", "dir/sub2/e"]
    assert [e[2] for e in entries] == [len(TREE[e[1]]) for e in entries]


def test_list_delimiter(s3op, boto, tree_bucket):
    entries = parse_list(expect_ok(s3op("list", tree_bucket, "dir/", "/")).stdout)
    files, prefixes = boto_list(boto, tree_bucket, "dir/", "/")
    assert sorted(entries) == sorted(files + prefixes)
    assert sorted(entries) == sorted([
        ("D", "dir/sub/"), ("D", "dir/sub2/"),
        *[e for e in files if e[1] in ("dir/a", "dir/b")],
    ])


def test_list_root_with_delimiter(s3op, boto, tree_bucket):
    entries = parse_list(expect_ok(s3op("list", tree_bucket, "", "/")).stdout)
    files, prefixes = boto_list(boto, tree_bucket, "", "/")
    assert sorted(entries) == sorted(files + prefixes)
    assert {e[1] for e in entries} == {"dir/", "other/", "dirx", "top"}


def test_list_prefix_without_slash(s3op, tree_bucket):
    entries = parse_list(expect_ok(s3op("list", tree_bucket, "dir", "/")).stdout)
    assert sorted(e[1] for e in entries) == ["dir/", "dirx"]


def test_list_no_match_is_empty(s3op, tree_bucket):
    assert expect_ok(s3op("list", tree_bucket, "nothing/here/")).stdout == b""


def test_list_other_delimiter(s3op, boto, bucket):
    for key in ["a+b+c", "a+d", "a=x+y", "plain"]:
        boto.put_object(Bucket=bucket, Key=key, Body=b"v")
    files, prefixes = boto_list(boto, bucket, "", "+")
    entries = parse_list(expect_ok(s3op("list", bucket, "", "+")).stdout)
    assert sorted(entries) == sorted(files + prefixes)
    assert {e[1] for e in entries} == {"a+", "a=x+", "plain"}


def test_list_empty_bucket(s3op, bucket):
    assert expect_ok(s3op("list", bucket, "")).stdout == b""


def test_list_missing_bucket_is_enoent(s3op):
    expect_error(s3op("list", random_bucket_name("missing"), ""), "ENOENT", 404)


MANY = 1100        # objects under many/: more than one 1000-key page
MANY_DIRS = 1050   # prefixes under tree/: more than one page of CommonPrefixes


@pytest.fixture(scope="module")
def listing_bucket(mc, boto):
    """A bucket with MANY objects under many/ and MANY_DIRS "directories" under tree/."""
    name = random_bucket_name("list")
    mc.mb(name)
    many = [f"many/k{i:05d}" for i in range(MANY)]
    dirs = [f"tree/d{i:05d}/f" for i in range(MANY_DIRS)]
    put_many(boto, name, many + dirs, lambda k: k.encode()[:len(k) % 7])
    try:
        yield name
    finally:
        mc.rb(name)


def test_list_paginates_objects(s3op, boto, listing_bucket):
    entries = parse_list(expect_ok(s3op("list", listing_bucket, "many/")).stdout)
    files, _ = boto_list(boto, listing_bucket, "many/")
    assert len(files) == MANY
    assert entries == files  # same keys, sizes, etags, mtimes, in key order, no duplicates


def test_list_paginates_common_prefixes(s3op, boto, listing_bucket):
    entries = parse_list(expect_ok(s3op("list", listing_bucket, "tree/", "/")).stdout)
    files, prefixes = boto_list(boto, listing_bucket, "tree/", "/")
    assert files == [] and len(prefixes) == MANY_DIRS
    assert entries == prefixes


def test_list_whole_bucket(s3op, listing_bucket):
    entries = parse_list(expect_ok(s3op("list", listing_bucket, "")).stdout)
    assert len(entries) == MANY + MANY_DIRS
    assert len({e[1] for e in entries}) == len(entries)


@pytest.mark.parametrize("max_keys", [1, 10, 999, 1000, 1001, 1099, 1100, 5000])
def test_list_max_keys(s3op, boto, listing_bucket, max_keys):
    entries = parse_list(expect_ok(s3op("list", listing_bucket, "many/", "", max_keys)).stdout)
    files, _ = boto_list(boto, listing_bucket, "many/")
    assert entries == files[:max_keys]


def test_list_max_keys_with_delimiter(s3op, boto, listing_bucket):
    entries = parse_list(expect_ok(s3op("list", listing_bucket, "tree/", "/", 1001)).stdout)
    _, prefixes = boto_list(boto, listing_bucket, "tree/", "/")
    assert entries == prefixes[:1001]


# -- keys that need encoding -----------------------------------------------------------------

SPECIAL_KEYS = [
    "with space/and  two spaces.txt",
    " leading and trailing space ",
    "unicode/é日本語🙂.bin",
    "plus+sign+",
    "percent%20literal%",
    "percent%2F%25%",
    "equals=sign==",
    "amp&ersand&",
    "question?mark?x=1",
    "hash#tag#",
    "tilde~user",
    "star*and[brackets]{braces}",
    "semi;colon,comma:colon@at!bang$dollar'quote(paren)",
    "caret^back`tick|pipe<lt>gt\"dq",
    "back\\slash",
    "tab\tin key",
    "trailing/slash/",
]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_key_round_trip(s3op, mc, boto, bucket, tmp_path, key):
    body = b"content of " + key.encode()
    (tmp_path / "in").write_bytes(body)

    expect_ok(s3op("put", bucket, key, tmp_path / "in"))
    assert boto_get(boto, bucket, key) == body  # stored under exactly that key
    files, _ = boto_list(boto, bucket)
    assert [f[1] for f in files] == [key]

    listed = parse_list(expect_ok(s3op("list", bucket, key)).stdout)
    assert [(e[0], e[1], e[2]) for e in listed] == [("F", key, len(body))]

    out = tmp_path / "out"
    expect_ok(s3op("get", bucket, key, out))
    assert out.read_bytes() == body
    assert expect_ok(s3op("head", bucket, key)).fields()["size"] == str(len(body))

    copy = key + "-copy"
    expect_ok(s3op("copy", bucket, key, bucket, copy))
    assert boto_get(boto, bucket, copy) == body

    expect_ok(s3op("put-buf", bucket, key, tmp_path / "in"))
    assert boto_get(boto, bucket, key) == body

    if "\t" not in key and not key.endswith("/"):
        # mc, the other independent client (it treats a trailing "/" as a folder).
        assert mc.cat(f"{bucket}/{key}") == body

    expect_ok(s3op("del", bucket, key))
    expect_ok(s3op("del", bucket, copy))
    assert boto_list(boto, bucket) == ([], [])


@pytest.mark.parametrize("key", ["a//b", "a/./b", "a/../b", "../escape", "./dot"])
def test_dot_and_double_slash_keys_match_boto3(s3op, boto, bucket, tmp_path, key):
    """The client must send such keys verbatim (no path squashing on the way).

    MinIO refuses them (XMinioInvalidObjectName / XMinioInvalidResourceName, 400); AWS stores
    them. Either way s3op must agree with boto3, and never create some other key."""
    (tmp_path / "in").write_bytes(b"dots")
    try:
        boto.put_object(Bucket=bucket, Key=key, Body=b"dots")
        boto_accepted = True
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        boto_accepted = False

    res = s3op("put", bucket, key, tmp_path / "in")
    if boto_accepted:
        expect_ok(res)
        assert boto_get(boto, bucket, key) == b"dots"
        assert [f[1] for f in boto_list(boto, bucket)[0]] == [key]
    else:
        expect_error(res, "EINVAL", 400)
        assert boto_list(boto, bucket) == ([], [])


# -- multipart upload ------------------------------------------------------------------------


def test_multipart_upload(s3op, mc, boto, bucket, tmp_path):
    data = write_random(tmp_path / "in", 17 * MiB)
    res = expect_ok(s3op("mpu", bucket, "mp/obj", tmp_path / "in", 5 * MiB))
    fields = res.fields()
    assert fields["parts"] == "4"
    assert fields["etag"].endswith("-4")
    assert fields["etag"] == multipart_etag(data, 5 * MiB)

    out = tmp_path / "out"
    mc.get(f"{bucket}/mp/obj", out)
    assert sha256_file(out) == sha256(data)
    stat = mc.stat(f"{bucket}/mp/obj")
    assert stat["size"] == len(data) and stat["etag"] == fields["etag"]
    assert boto.head_object(Bucket=bucket, Key="mp/obj")["ETag"].strip('"') == fields["etag"]
    head = expect_ok(s3op("head", bucket, "mp/obj")).fields()
    assert head["etag"] == fields["etag"] and head["size"] == str(len(data))
    assert boto.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_multipart_exact_multiple_of_part_size(s3op, mc, bucket, tmp_path):
    data = write_random(tmp_path / "in", 10 * MiB)
    res = expect_ok(s3op("mpu", bucket, "mp/even", tmp_path / "in", 5 * MiB))
    assert res.fields()["parts"] == "2"
    assert sha256(mc.cat(f"{bucket}/mp/even")) == sha256(data)


def test_multipart_parts_below_minimum_are_einval(s3op, boto, bucket, tmp_path):
    write_random(tmp_path / "in", 3 * MiB)
    err = expect_error(s3op("mpu", bucket, "mp/small", tmp_path / "in", MiB), "EINVAL", 400)
    assert err.code == "EntityTooSmall"
    assert not boto_exists(boto, bucket, "mp/small")


def test_multipart_abort_leaves_nothing(s3op, boto, bucket, tmp_path):
    write_random(tmp_path / "in", 12 * MiB)
    res = expect_ok(s3op("mpu-abort", bucket, "mp/aborted", tmp_path / "in", 5 * MiB, 2))
    upload_id = res.fields()["upload_id"]
    assert upload_id
    assert boto.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as exc:
        boto.list_parts(Bucket=bucket, Key="mp/aborted", UploadId=upload_id)
    assert exc.value.response["Error"]["Code"] == "NoSuchUpload"
    assert not boto_exists(boto, bucket, "mp/aborted")


def test_multipart_complete_with_bogus_parts_fails(s3op, boto, bucket):
    err = expect_error(s3op("mpu-complete-bad", bucket, "mp/bad"), "EINVAL", 400)
    assert err.code == "InvalidPart"
    assert not boto_exists(boto, bucket, "mp/bad")


# -- authentication --------------------------------------------------------------------------

# Every command that sends a request; "exists" is created first, "new" must not appear.
AUTH_OPS = ["head-bucket", "head", "get", "get-buf", "put", "put-buf", "del", "copy", "list",
            "mpu"]


def _op_args(op, bucket, tmp_path):
    src = tmp_path / "in"
    if not src.exists():
        src.write_bytes(b"x" * 100)
    return {
        "head-bucket": [bucket],
        "head": [bucket, "exists"],
        "get": [bucket, "exists", tmp_path / "out"],
        "get-buf": [bucket, "exists", 0, 10],
        "put": [bucket, "new", src],
        "put-buf": [bucket, "new", src],
        "del": [bucket, "exists"],
        "copy": [bucket, "exists", bucket, "new"],
        "list": [bucket, ""],
        "mpu": [bucket, "new", src, 5 * MiB],
    }[op]


@pytest.mark.parametrize("op", AUTH_OPS)
@pytest.mark.parametrize("which", ["bad-secret", "unknown-key"])
def test_wrong_credentials_are_eacces_without_retries(s3op, mc, minio, bucket, tmp_path, op,
                                                      which):
    mc.put_bytes(f"{bucket}/exists", b"keep me")
    env = ({"AWS_SECRET_ACCESS_KEY": "not-the-secret-" + minio.secret_key}
           if which == "bad-secret" else {"AWS_ACCESS_KEY_ID": "AKIDUNKNOWN0000"})
    res = s3op(op, *_op_args(op, bucket, tmp_path), env=env, timeout=60)
    err = expect_error(res, "EACCES", 403)
    assert err.attempts == 1, "a 403 must not be retried\n" + res.describe()
    assert res.elapsed < 10, res.describe()
    # Nothing changed on the server.
    assert mc.cat(f"{bucket}/exists") == b"keep me"
    assert not mc.exists(f"{bucket}/new")


def test_no_credentials_at_all_is_eacces(s3op, bucket, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "HOME": str(tmp_path),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-such-file")}
    err = expect_error(s3op("head-bucket", bucket, env=env), "EACCES")
    assert err.attempts == 0


def _no_aws_env(home):
    return {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "HOME": str(home)}


def test_oss_environment_credentials(s3op, minio, bucket, tmp_path):
    env = _no_aws_env(tmp_path)
    env.update(OSS_ACCESS_KEY_ID=minio.access_key, OSS_ACCESS_KEY_SECRET=minio.secret_key)
    expect_ok(s3op("head-bucket", bucket, env=env))


def test_aws_environment_wins_over_oss(s3op, bucket):
    env = {"OSS_ACCESS_KEY_ID": "wrong", "OSS_ACCESS_KEY_SECRET": "wrong-secret"}
    expect_ok(s3op("head-bucket", bucket, env=env))


def _credentials_file(path, minio, default_ok=True):
    good = f"aws_access_key_id = {minio.access_key}\naws_secret_access_key = {minio.secret_key}\n"
    bad = "aws_access_key_id = wrong\naws_secret_access_key = wrong-secret\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[default]\n{good if default_ok else bad}\n[other]\n{good}")
    return path


def test_shared_credentials_file(s3op, minio, bucket, tmp_path):
    env = _no_aws_env(tmp_path)
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(_credentials_file(tmp_path / "creds", minio))
    expect_ok(s3op("head-bucket", bucket, env=env))


def test_shared_credentials_file_in_home(s3op, minio, bucket, tmp_path):
    _credentials_file(tmp_path / ".aws" / "credentials", minio)
    expect_ok(s3op("head-bucket", bucket, env=_no_aws_env(tmp_path)))


def test_shared_credentials_profile(s3op, minio, bucket, tmp_path):
    env = _no_aws_env(tmp_path)
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(_credentials_file(tmp_path / "creds", minio,
                                                              default_ok=False))
    expect_error(s3op("head-bucket", bucket, env=env), "EACCES", 403)
    env["AWS_PROFILE"] = "other"
    expect_ok(s3op("head-bucket", bucket, env=env))


def test_shared_credentials_file_with_sts_session_token(s3op, minio, boto, bucket, tmp_path):
    """Temporary credentials from MinIO's STS (AssumeRole with the root keys): the session
    token is hundreds of characters long, beyond the 200 a libinih line holds. From the
    file they sign requests the server accepts; a wrong token is refused (403)."""
    import boto3
    sts = boto3.client("sts", endpoint_url=minio.endpoint, region_name="us-east-1",
                       aws_access_key_id=minio.access_key,
                       aws_secret_access_key=minio.secret_key)
    # A session policy travels inside MinIO's token, as session tags do in AWS's: it makes
    # the token as long as a real STS one (~900 characters and more).
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": f"Statement{i}ForALongerSessionToken", "Effect": "Allow",
         "Action": ["s3:*"], "Resource": [f"arn:aws:s3:::{bucket}",
                                          f"arn:aws:s3:::{bucket}/area-{i}-of-the-bucket/*"]}
        for i in range(8)] + [{"Effect": "Allow", "Action": ["s3:*"],
                               "Resource": [f"arn:aws:s3:::{bucket}/*"]}]})
    cr = sts.assume_role(RoleArn="arn:minio:iam:::role/rwsplit-test", RoleSessionName="rwsplit",
                         DurationSeconds=900, Policy=policy)["Credentials"]
    assert len(cr["SessionToken"]) > 900, len(cr["SessionToken"])
    path = tmp_path / "creds"
    text = (f"[default]\naws_access_key_id = {cr['AccessKeyId']}\n"
            f"aws_secret_access_key = {cr['SecretAccessKey']}\n"
            f"aws_session_token = {{}}\n")
    env = _no_aws_env(tmp_path)
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(path)
    path.write_text(text.format(cr["SessionToken"]))
    expect_ok(s3op("head-bucket", bucket, env=env))
    path.write_text(text.format(cr["SessionToken"][:-8] + "AAAAAAAA"))
    expect_error(s3op("head-bucket", bucket, env=env), "EACCES", 403)


# -- store settings --------------------------------------------------------------------------


def test_signed_payload(s3op, mc, config_file, bucket, tmp_path):
    op = s3op.using(config=config_file(name="signed.conf", payload_signing="signed"))
    data = write_random(tmp_path / "in", 6 * MiB + 5)
    expect_ok(op("put", bucket, "signed/put", tmp_path / "in"))
    expect_ok(op("put-buf", bucket, "signed/put-buf", tmp_path / "in"))
    expect_ok(op("mpu", bucket, "signed/mpu", tmp_path / "in", 5 * MiB))
    for key in ("signed/put", "signed/put-buf", "signed/mpu"):
        assert sha256(mc.cat(f"{bucket}/{key}")) == sha256(data), key


def test_virtual_host_addressing(s3op, config_file, tmp_path):
    """bucket.localhost:PORT: curl resolves any *.localhost name to loopback by itself."""
    with MinioServer(domain="localhost") as server:
        s3 = server.boto3_client()
        s3.create_bucket(Bucket="vhost-bucket")
        conf = config_file(server=server, name="virtual.conf",
                           endpoint=f"http://localhost:{server.port}", addressing="virtual")
        op = s3op.using(server, conf)
        (tmp_path / "in").write_bytes(b"virtual")
        expect_ok(op("head-bucket", "vhost-bucket"))
        expect_ok(op("put", "vhost-bucket", "dir/a b+c", tmp_path / "in"))
        assert boto_get(s3, "vhost-bucket", "dir/a b+c") == b"virtual"
        entries = parse_list(expect_ok(op("list", "vhost-bucket", "dir/", "/")).stdout)
        assert [e[1] for e in entries] == ["dir/a b+c"]
        expect_ok(op("copy", "vhost-bucket", "dir/a b+c", "vhost-bucket", "dir/copy"))
        assert boto_get(s3, "vhost-bucket", "dir/copy") == b"virtual"
        expect_ok(op("del", "vhost-bucket", "dir/a b+c"))
        assert not boto_exists(s3, "vhost-bucket", "dir/a b+c")
        expect_error(op("head-bucket", "no-such-vhost-bucket"), "ENOENT", 404)


def test_virtual_host_addressing_is_really_used(s3op, minio, boto, config_file, bucket,
                                                tmp_path):
    """Control for the test above: the session server has no MINIO_DOMAIN, so it reads a
    virtual-host request PUT /dir/k as bucket "dir", key "k", which does not exist."""
    conf = config_file(name="virtual.conf", endpoint=f"http://localhost:{minio.port}",
                       addressing="virtual")
    (tmp_path / "in").write_bytes(b"virtual")
    expect_error(s3op.using(config=conf)("put", bucket, "dir/k", tmp_path / "in"), "ENOENT", 404)
    assert boto_list(boto, bucket) == ([], [])


# -- key length ------------------------------------------------------------------------------


def long_key(nbytes, filler="k"):
    """A key of exactly nbytes UTF-8 bytes in segments short enough for MinIO's file system
    (255 bytes per path segment)."""
    segment = filler * (200 // len(filler.encode()))
    parts, size = [], 0
    while size + len(segment.encode()) + 1 < nbytes:
        parts.append(segment)
        size += len(segment.encode()) + 1
    key = "/".join(parts) + "/" if parts else ""
    key += "t" * (nbytes - len(key.encode()))
    assert len(key.encode()) == nbytes
    return key


def test_key_of_1024_bytes_works(s3op, boto, bucket, tmp_path):
    key = long_key(1024)
    (tmp_path / "in").write_bytes(b"long")
    expect_ok(s3op("put", bucket, key, tmp_path / "in"))
    assert boto_get(boto, bucket, key) == b"long"
    assert expect_ok(s3op("head", bucket, key)).fields()["size"] == "4"
    expect_ok(s3op("del", bucket, key))
    assert not boto_exists(boto, bucket, key)


def _too_long_ops(key, tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"x")
    return [
        ["head", "bkt", key],
        ["get", "bkt", key, tmp_path / "out"],
        ["get-buf", "bkt", key, 0, 1],
        ["put", "bkt", key, src],
        ["put-buf", "bkt", key, src],
        ["del", "bkt", key],
        ["copy", "bkt", key, "bkt", "short"],
        ["copy", "bkt", "short", "bkt", key],
        ["mpu", "bkt", key, src, 5 * MiB],
    ]


@pytest.mark.parametrize("key", [long_key(1025), "é" * 513], ids=["ascii-1025", "utf8-1026"])
def test_key_over_1024_bytes_is_enametoolong_offline(s3op, config_file, tmp_path, key):
    # Nothing listens on this endpoint: ENAMETOOLONG (not EIO) proves no request was made.
    dead = config_file(name="dead.conf", endpoint=f"http://127.0.0.1:{free_port()}",
                       retry_time="1s", connect_timeout="1s")
    op = s3op.using(config=dead)
    for args in _too_long_ops(key, tmp_path):
        res = op(*args, timeout=60)
        err = expect_error(res, "ENAMETOOLONG")
        assert err.attempts == 0, res.describe()


# -- the server goes away --------------------------------------------------------------------

BIG = 256 * MiB
PROGRESS = 8 * MiB   # how much must have moved before the server is stopped


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.bin"
    with open(path, "wb") as f:
        for _ in range(BIG // (16 * MiB)):
            f.write(os.urandom(16 * MiB))
    yield path
    path.unlink()  # pytest keeps the last runs' temporary directories: not 256 MiB of them


@pytest.fixture
def out(tmp_path):
    """Where a big download goes; removed afterwards, like big_file."""
    path = tmp_path / "out"
    yield path
    path.unlink(missing_ok=True)


def _fast_fail_config(config_file, server, **extra):
    settings = dict(retry_time="3s", stall_timeout="2s", connect_timeout="1s",
                    max_attempts=100)
    settings.update(extra)
    return config_file(server=server, name="server-goes-away.conf", **settings)


def _skip_if_done(proc, what):
    if proc.poll() is not None:
        pytest.skip(f"the {what} finished before the server could be stopped "
                    f"(machine too fast for {BIG >> 20} MiB?)")


def _start_big_upload(s3op, server, config, big_file):
    """Starts `put` of big_file into bucket "big" and returns (op, proc) once the upload is
    under way (s3op has read PROGRESS bytes of the file)."""
    server.boto3_client().create_bucket(Bucket="big")
    op = s3op.using(server, config)
    proc = op.spawn("put", "big", "obj", big_file)
    wait_until(lambda: proc.poll() is not None or bytes_read_by(proc.pid) >= PROGRESS, 60)
    _skip_if_done(proc, "upload")
    return op, proc


def _start_big_download(s3op, server, config, big_file, out):
    """Stores big_file as big/obj, starts `get` of it into out and returns (op, proc) once
    PROGRESS bytes have arrived."""
    s3 = server.boto3_client()
    s3.create_bucket(Bucket="big")
    s3.upload_file(str(big_file), "big", "obj")
    op = s3op.using(server, config)
    proc = op.spawn("get", "big", "obj", out)
    wait_until(lambda: proc.poll() is not None or file_size(out) >= PROGRESS, 60)
    _skip_if_done(proc, "download")
    return op, proc


def test_server_killed_during_upload_is_eio(s3op, restartable_minio, config_file, big_file):
    server = restartable_minio
    op, proc = _start_big_upload(s3op, server, _fast_fail_config(config_file, server), big_file)
    server.stop(keep_data=True, hard=True)
    killed = time.monotonic()
    res = op.finish(proc, timeout=60)
    print(res.describe())  # shown by pytest on failure, or with -s
    err = expect_error(res, "EIO")
    assert err.attempts > 1, res.describe()
    assert time.monotonic() - killed < 20, res.describe()


def test_server_killed_during_download_is_eio(s3op, restartable_minio, config_file, big_file,
                                              out):
    server = restartable_minio
    op, proc = _start_big_download(s3op, server, _fast_fail_config(config_file, server),
                                   big_file, out)
    server.stop(keep_data=True, hard=True)
    killed = time.monotonic()
    res = op.finish(proc, timeout=60)
    print(res.describe())
    expect_error(res, "EIO")
    assert time.monotonic() - killed < 20, res.describe()


def test_hung_server_is_eio(s3op, restartable_minio, config_file, big_file, out):
    """The server stops answering mid-download (SIGSTOP): the stall timeout must fire."""
    server = restartable_minio
    op, proc = _start_big_download(s3op, server, _fast_fail_config(config_file, server),
                                   big_file, out)
    server.pause()
    paused = time.monotonic()
    res = op.finish(proc, timeout=60)
    print(res.describe())
    expect_error(res, "EIO")
    assert time.monotonic() - paused < 20, res.describe()


def test_stall_timeout_is_honoured_mid_transfer(s3op, restartable_minio, config_file, big_file,
                                                out):
    """stall_timeout: "a transfer with no progress for this long fails"."""
    server = restartable_minio
    # retry_time 0: the first stall is final, so the time measured is the stall detection alone.
    config = _fast_fail_config(config_file, server, retry_time="0s", stall_timeout="2s")
    op, proc = _start_big_download(s3op, server, config, big_file, out)
    server.pause()
    paused = time.monotonic()
    res = op.finish(proc, timeout=60)
    stalled_for = time.monotonic() - paused
    print(res.describe())
    expect_error(res, "EIO")
    # 2 s of stall, plus up to 2 s for the client to drain what the kernel had buffered.
    assert stalled_for < 4.5, f"stall noticed {stalled_for:.1f} s after the server froze"


def test_hung_server_head_bucket_is_eio(s3op, restartable_minio, config_file):
    server = restartable_minio
    server.boto3_client().create_bucket(Bucket="hung")
    server.pause()
    res = s3op.using(server, _fast_fail_config(config_file, server))("head-bucket", "hung",
                                                                       timeout=60)
    expect_error(res, "EIO")
    assert res.elapsed < 20, res.describe()


def _patient_config(config_file, server):
    return _fast_fail_config(config_file, server, retry_time="20s")


def test_server_down_then_back_before_request(s3op, restartable_minio, config_file):
    server = restartable_minio
    server.boto3_client().create_bucket(Bucket="back")
    op = s3op.using(server, _patient_config(config_file, server))
    server.stop(keep_data=True, hard=True)
    proc = op.spawn("head-bucket", "back")
    time.sleep(2)
    server.start()
    expect_ok(op.finish(proc, timeout=60))


def test_server_restarted_during_upload_succeeds(s3op, restartable_minio, config_file, big_file,
                                                 out):
    server = restartable_minio
    op, proc = _start_big_upload(s3op, server, _patient_config(config_file, server), big_file)
    server.restart(down_for=2, hard=True)
    res = expect_ok(op.finish(proc, timeout=120))
    print(res.describe())
    with Mc(server) as mc:
        stat = mc.stat("big/obj")
        assert stat["size"] == BIG
        assert res.fields()["etag"] == stat["etag"]
        mc.get("big/obj", out)
    assert sha256_file(out) == sha256_file(big_file)


def test_server_restarted_during_download_succeeds(s3op, restartable_minio, config_file,
                                                   big_file, out):
    server = restartable_minio
    op, proc = _start_big_download(s3op, server, _patient_config(config_file, server),
                                   big_file, out)
    server.restart(down_for=2, hard=True)
    res = expect_ok(op.finish(proc, timeout=120))
    print(res.describe())
    assert res.fields()["got"] == str(BIG)
    assert file_size(out) == BIG
    assert sha256_file(out) == sha256_file(big_file)


# -- the driver itself -----------------------------------------------------------------------


def test_named_store(s3op, minio, bucket, tmp_path, mc):
    conf = tmp_path / "named.conf"
    conf.write_text(minio.config_text() + "\n" +
                    minio.config_text(store_name="second"))
    mc.put_bytes(f"{bucket}/k", b"v")
    res = expect_ok(s3op.using(config=conf)("head", bucket, "k", store="second"))
    assert res.fields()["size"] == "1"


def test_unknown_store_or_bad_config_exit_78(s3op, bucket, tmp_path):
    assert s3op("head-bucket", bucket, store="nope").returncode == 78
    bad = tmp_path / "bad.conf"
    bad.write_text("[store]\nendpoint = not a url\n")
    res = s3op.using(config=bad)("head-bucket", bucket)
    assert res.returncode == 78 and "bad.conf" in res.stderr, res.describe()


def test_usage_errors_exit_64(s3op, bucket):
    assert s3op("no-such-command", bucket).returncode == 64
    assert s3op("get-buf", bucket, "k", "-1", "2").returncode == 64
    assert s3op("head", bucket).returncode == 64
