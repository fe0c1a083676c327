"""The S3 client (s3/) under S3-level faults (issue 15): error responses and lost responses,
injected by tests/harness/s3faults.py between s3op and a real MinIO.

A lost response is the hard case: the request took effect in the store, the client hears
nothing and retries. For idempotent requests (PUT, GET, DELETE, a part) the retry simply
repeats it. CreateMultipartUpload and CompleteMultipartUpload are not idempotent; the client
must neither leave an upload open (ListMultipartUploads stays empty) nor report a completed
object as failed. Every result is checked with boto3 against MinIO directly.
"""

import hashlib
import os

import pytest

from tests.harness.s3faults import S3Faults

MiB = 1 << 20


def multipart_etag(data, part_size):
    digests = [hashlib.md5(data[i:i + part_size]).digest()
               for i in range(0, max(len(data), 1), part_size)]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def faults(minio):
    with S3Faults(minio.port) as f:
        yield f


@pytest.fixture
def op(s3op, config_file, faults):
    """s3op talking to MinIO through the injector, logging at info."""
    runner = s3op.using(config=config_file(name="faults.conf", endpoint=faults.endpoint,
                                           retry_time="20s"))
    return lambda *args: runner(*args, env={"RWSPLIT_LOG": "info"})


def uploads(boto, bucket):
    return boto.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def stored(boto, bucket, key):
    return boto.get_object(Bucket=bucket, Key=key)["Body"].read()


def expect_ok(res):
    assert res.ok, res.describe()
    return res


@pytest.fixture
def src(tmp_path):
    data = os.urandom(12 * MiB)
    (tmp_path / "in").write_bytes(data)
    return tmp_path / "in", data


def test_lost_create_multipart_response_leaves_no_upload(op, faults, boto, bucket, src):
    path, data = src
    faults.add("POST", "uploads", "lose", times=2)
    res = expect_ok(op("mpu", bucket, "mp/obj", path, 5 * MiB))
    assert faults.hits("lose") == 2
    assert len(faults.requests("POST", "uploads")) == 3  # each one made an upload
    assert res.fields()["etag"] == multipart_etag(data, 5 * MiB)
    assert sha(stored(boto, bucket, "mp/obj")) == sha(data)
    assert uploads(boto, bucket) == []
    assert "left by a lost CreateMultipartUpload response, aborted" in res.stderr


def test_lost_create_does_not_abort_other_keys_uploads(op, faults, boto, bucket, src):
    path, data = src
    other = boto.create_multipart_upload(Bucket=bucket, Key="mp/other")["UploadId"]
    older = boto.create_multipart_upload(Bucket=bucket, Key="mp/obj-older")["UploadId"]
    faults.add("POST", "uploads", "lose", times=1)
    expect_ok(op("mpu", bucket, "mp/obj", path, 5 * MiB))
    assert sorted(u["UploadId"] for u in uploads(boto, bucket)) == sorted([other, older])
    for key, uid in (("mp/other", other), ("mp/obj-older", older)):
        boto.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)


def test_lost_complete_response_is_a_success(op, faults, boto, bucket, src):
    path, data = src
    faults.add("POST", "uploadId", "lose", times=1)
    res = expect_ok(op("mpu", bucket, "mp/obj", path, 5 * MiB))
    assert faults.hits("lose") == 1
    assert "CompleteMultipartUpload's response was lost; the object is there" in res.stderr
    assert res.fields()["etag"] == multipart_etag(data, 5 * MiB)
    assert sha(stored(boto, bucket, "mp/obj")) == sha(data)
    assert uploads(boto, bucket) == []


def test_complete_retried_into_nosuchupload_over_another_object_fails(op, faults, boto,
                                                                       bucket, src):
    """NoSuchUpload after a retry, and the key holds something other than these parts make
    (here: the upload was aborted and another object put meanwhile): the complete failed,
    and the client must say so rather than count it a success."""
    path, data = src

    def abort_and_replace(query):
        boto.abort_multipart_upload(Bucket=bucket, Key="mp/obj", UploadId=query["uploadId"][0])
        boto.put_object(Bucket=bucket, Key="mp/obj", Body=b"someone else's")

    faults.add("POST", "uploadId", "500", times=1, before=abort_and_replace)
    res = op("mpu", bucket, "mp/obj", path, 5 * MiB)
    assert res.returncode == 1, res.describe()
    err = res.error()
    assert err and err.errno == "ENOENT" and err.code == "NoSuchUpload", res.describe()
    assert stored(boto, bucket, "mp/obj") == b"someone else's"
    assert uploads(boto, bucket) == []


@pytest.mark.parametrize("action", ["503", "500", "lose"])
def test_part_and_put_faults_are_retried(op, faults, boto, bucket, src, action):
    path, data = src
    faults.add("PUT", "partNumber", action, times=2)
    faults.add("PUT", "", action, times=1, no_query_key="partNumber")
    res = expect_ok(op("mpu", bucket, "mp/obj", path, 5 * MiB))
    assert res.fields()["etag"] == multipart_etag(data, 5 * MiB)
    expect_ok(op("put", bucket, "plain/obj", path))
    assert faults.hits(action) == 3
    assert sha(stored(boto, bucket, "mp/obj")) == sha(data)
    assert sha(stored(boto, bucket, "plain/obj")) == sha(data)
    assert uploads(boto, bucket) == []


def test_lost_delete_and_copy_responses(op, faults, boto, bucket):
    boto.put_object(Bucket=bucket, Key="a", Body=b"aaa")
    faults.add("PUT", "", "lose", times=1)  # CopyObject is a PUT with x-amz-copy-source
    expect_ok(op("copy", bucket, "a", bucket, "b"))
    faults.add("DELETE", "", "lose", times=1)
    expect_ok(op("del", bucket, "a"))
    assert faults.hits("lose") == 2
    assert stored(boto, bucket, "b") == b"aaa"
    assert "Contents" not in boto.list_objects_v2(Bucket=bucket, Prefix="a")


def test_slowdown_that_persists_is_eio_and_leaves_nothing(s3op, config_file, faults, boto,
                                                          bucket, src):
    path, _ = src
    op = s3op.using(config=config_file(name="short.conf", endpoint=faults.endpoint,
                                       retry_time="2s"))
    faults.add("PUT", "partNumber", "503", times=1000)
    res = op("mpu", bucket, "mp/obj", path, 5 * MiB)
    assert res.returncode == 1, res.describe()
    err = res.error()
    assert err and err.errno == "EIO" and err.code == "SlowDown" and err.status == 503, (
        res.describe())
    assert err.attempts > 1
    assert uploads(boto, bucket) == []
    assert "Contents" not in boto.list_objects_v2(Bucket=bucket, Prefix="mp/")
