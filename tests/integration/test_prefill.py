"""rwsplit prefill (issue 16): fills a read route's cache before the job, which then reads
every file without a GET; a second run downloads nothing unless objects changed; a file or
directory inside a route prefills only that; progress shows as a bar on a terminal and as
lines otherwise; bad input (a path in no read route, a missing bucket, wrong keys) is a clear
error with the documented exit status.

Objects are uploaded with mc; bytes read through the route are compared with the local
originals, and the job's GET count comes from its exit summary (RWSPLIT_LOG=info).
"""

import hashlib
import os
import pty
import re
import secrets
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import proc
from tests.harness.minio import random_bucket_name
from tests.harness.proc import expect_ok

KiB = 1 << 10
MiB = 1 << 20
TIMEOUT = 180

# Small objects, one above whole_object_max (filled lazily by a job, whole by prefill),
# names that need escaping, an empty object.
FILES = {f"d{i % 3}/f{i:03d}.bin": 10 * KiB + 331 * i for i in range(45)}
FILES.update({"big/lazy-6m.bin": 6 * MiB, "odd/ünï cødé %41+=.bin": 3333,
              "odd/with space.bin": 1, "empty.bin": 0})
# Directory markers (the S3 console's "Create folder"): not files, so prefill leaves them
# alone. (MinIO refuses keys with an empty segment, the other kind the shadow tree hides.)
MARKERS = ["d0/", "m1/"]

SUMMARY_RE = re.compile(r"^prefill (?P<name>.+): (?P<files>\d+) files \((?P<size>[^)]*)\): "
                        r"(?P<fetched>\d+) downloaded \([^)]*\), (?P<cached>\d+) already "
                        r"cached, (?P<failed>\d+) failed in [\dhms]+(?P<rest>.*)$", re.MULTILINE)
READ_SUMMARY_RE = re.compile(r"read summary: (\d+) files opened .*, (\d+) bytes from the "
                             r"store, .*, (\d+) GETs,")


@pytest.fixture(scope="module")
def data(mc, boto, tmp_path_factory):
    root = tmp_path_factory.mktemp("prefill-data")
    for rel, size in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
    bucket = random_bucket_name("pf")
    mc.mb(bucket)
    mc.run("cp", "--recursive", "--quiet", f"{root}/", mc.target(f"{bucket}/data/"),
           timeout=300)
    for key in MARKERS:
        boto.put_object(Bucket=bucket, Key=f"data/{key}", Body=b"")
    try:
        yield bucket, root
    finally:
        mc.rb(bucket)


@pytest.fixture
def route(minio, build, data, tmp_path):
    """route(cache="1GiB", bucket=None, store=None, cache_dir=None, local=None,
    write_route=False) -> (conf, local, cache_dir)."""
    build.require(build.lib)
    build.require(build.rwsplit)
    made = []

    def make(cache="1GiB", bucket=None, store=None, cache_dir=None, local=None,
             write_route=False):
        tag = secrets.token_hex(5)
        local = local or f"/mnt/rwsplit-pf-{tag}/data"
        cdir = Path(cache_dir or f"/dev/shm/rwsplit-pf-{tag}")
        made.append(cdir)
        routes = [("read", local, f"s3://{bucket or data[0]}/data/",
                   {"whole_object_max": "4MiB", "cache": cache})]
        if write_route:
            routes.append(("write", f"/mnt/rwsplit-pf-{tag}/out", f"s3://{data[0]}/out/",
                           {"spool": str(tmp_path / "spool")}))
        conf = tmp_path / f"rw-{tag}.conf"
        conf.write_text(f"[global]\ncache_dir = {cdir}\n\n"
                        + minio.config_text(routes=routes, **(store or {})))
        return conf, local, cdir

    yield make
    for cdir in made:
        shutil.rmtree(cdir, ignore_errors=True)
        for pid in proc.fetch_agents(cdir):
            os.kill(pid, 9)


def prefill(minio, build, conf, *args, env=None):
    return proc.run([str(build.rwsplit), "prefill", "-c", str(conf), *map(str, args)],
                    minio.child_env(env), TIMEOUT)


def summaries(res):
    return [m.groupdict() for m in SUMMARY_RE.finditer(res.stderr.decode(errors="replace"))]


def sha(data):
    return hashlib.sha256(data).hexdigest()


HASH_ALL = (
    "import hashlib, os, sys\n"
    "for d, _, names in sorted(os.walk(sys.argv[1])):\n"
    "    for n in sorted(names):\n"
    "        p = os.path.join(d, n)\n"
    "        print(hashlib.sha256(open(p, 'rb').read()).hexdigest(), "
    "os.path.relpath(p, sys.argv[1]), sep='\\t')\n")


def read_all(minio, build, conf, local, want):
    """Reads every file under local through the route; checks the bytes against want
    ({rel: bytes}) and returns the job's GET count and bytes from the store."""
    env = proc.preload_env(minio, build.lib, conf, "info")
    res = expect_ok(proc.run([sys.executable, "-c", HASH_ALL, local], env, TIMEOUT))
    got = dict(line.split("\t")[::-1] for line in res.stdout.decode().splitlines())
    assert got == {rel: sha(b) for rel, b in want.items()}, res.describe()
    m = READ_SUMMARY_RE.search(res.stderr.decode(errors="replace"))
    assert m, res.describe()
    return int(m.group(3)), int(m.group(2))


def originals(root, names=FILES):
    return {rel: (root / rel).read_bytes() for rel in names}


def test_prefill_then_the_job_reads_without_a_get(minio, build, data, route):
    """Every object is downloaded once (directory markers are not); the job then opens every
    file, big and odd names included, and its summary shows 0 GETs and 0 bytes from the
    store. Without prefill the same job makes GETs (the comparison)."""
    conf, local, _ = route()
    res = expect_ok(prefill(minio, build, conf, local))
    (s,) = summaries(res)
    assert (s["name"], int(s["files"]), int(s["fetched"]), int(s["cached"]),
            int(s["failed"])) == (local, len(FILES), len(FILES), 0, 0), res.describe()
    gets, from_store = read_all(minio, build, conf, local, originals(data[1]))
    assert (gets, from_store) == (0, 0)
    cold_conf, cold_local, _ = route()
    gets, from_store = read_all(minio, build, cold_conf, cold_local, originals(data[1]))
    assert gets > len(FILES) / 2 and from_store >= sum(FILES.values()), (gets, from_store)


def test_second_run_is_a_noop_unless_objects_changed(minio, build, mc, data, route, tmp_path):
    conf, local, _ = route()
    expect_ok(prefill(minio, build, conf, local))
    res = expect_ok(prefill(minio, build, conf, local))
    (s,) = summaries(res)
    assert (int(s["fetched"]), int(s["cached"])) == (0, len(FILES)), res.describe()
    # Another version of one object (same size, other bytes), and one of another size.
    bucket, root = data
    same_size = os.urandom(FILES["d1/f001.bin"])
    mc.put_bytes(f"{bucket}/data/d1/f001.bin", same_size)
    other_size = os.urandom(777)
    mc.put_bytes(f"{bucket}/data/odd/with space.bin", other_size)
    try:
        res = expect_ok(prefill(minio, build, conf, local))
        (s,) = summaries(res)
        assert (int(s["fetched"]), int(s["cached"])) == (2, len(FILES) - 2), res.describe()
        want = originals(root)
        want["d1/f001.bin"], want["odd/with space.bin"] = same_size, other_size
        assert read_all(minio, build, conf, local, want) == (0, 0)
    finally:
        mc.put(root / "d1/f001.bin", f"{bucket}/data/d1/f001.bin")
        mc.put(root / "odd/with space.bin", f"{bucket}/data/odd/with space.bin")


def test_a_directory_or_a_file_inside_a_route(minio, build, data, route):
    conf, local, _ = route()
    res = expect_ok(prefill(minio, build, conf, f"{local}/d1", f"{local}/odd/ünï cødé %41+=.bin"))
    got = [(int(s["files"]), int(s["fetched"])) for s in summaries(res)]
    d1 = sum(1 for n in FILES if n.startswith("d1/"))
    assert got == [(d1, d1), (1, 1)], res.describe()
    # d10/... would share the prefix "d1" as a string: nothing of it may come along
    res = expect_ok(prefill(minio, build, conf, local))
    (s,) = summaries(res)
    assert (int(s["fetched"]), int(s["cached"])) == (len(FILES) - d1 - 1, d1 + 1)


def test_cache_budget_stops_the_listing(minio, build, data, route):
    """A budget smaller than the route: objects are taken in key order while they fit (less
    a tenth), the 6 MiB one first in key order among them; the summary names what was left
    out, and the status is still 0."""
    conf, local, cdir = route(cache="2MiB")
    res = expect_ok(prefill(minio, build, conf, local))
    (s,) = summaries(res)
    m = re.search(r"; (\d+) more \(.*\) left out: they do not fit the route's cache budget",
                  s["rest"])
    assert m, res.describe()
    assert 0 < int(s["files"]) < len(FILES) and int(s["failed"]) == 0
    assert int(s["files"]) + int(m.group(1)) == len(FILES)


def test_cache_dir_option_fills_another_directory(minio, build, data, route, tmp_path):
    """--cache-dir fills a directory that a job then uses as its cache_dir (a volume an init
    container filled): 0 GETs there."""
    other = Path(f"/dev/shm/rwsplit-pf-vol-{secrets.token_hex(4)}")
    conf, local, _ = route()
    job_conf, _, _ = route(cache_dir=other, local=local)
    try:
        expect_ok(prefill(minio, build, conf, "--cache-dir", other, local))
        assert read_all(minio, build, job_conf, local, originals(data[1])) == (0, 0)
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_progress_bar_on_a_terminal(minio, build, data, route):
    """On a terminal the progress is one redrawn line (a bar, files, bytes, rate, ETA)."""
    conf, local, _ = route()
    master, slave = pty.openpty()
    p = subprocess.Popen([str(build.rwsplit), "prefill", "-c", str(conf), local],
                         env=minio.child_env(), stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 1)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    assert p.wait(timeout=30) == 0, out
    text = out.decode(errors="replace")
    assert re.search(r"\rprefill .+ \[[#.]{24}\] \d+/%d files .* ETA " % len(FILES), text) or \
        re.search(r"\r\x1b\[Kprefill .+ \[[#.]{24}\] \d+/%d files .* ETA " % len(FILES), text), text
    assert re.search(r"\d+ files \(.*\): %d downloaded" % len(FILES), text), text


def test_plain_progress_lines_when_not_a_terminal(minio, build, data, route):
    conf, local, _ = route()
    res = expect_ok(prefill(minio, build, conf, local))
    err = res.stderr.decode(errors="replace")
    assert "\r" not in err and "\x1b" not in err
    assert re.search(r"^prefill %s: 0/%d files, 0 B/[\d.]+ MiB, " % (re.escape(local),
                     len(FILES)), err, re.MULTILINE), err


@pytest.mark.parametrize("case", ["outside", "write-route", "no-bucket", "bad-keys", "usage"])
def test_bad_input_is_a_clear_error(minio, build, data, route, case):
    if case == "no-bucket":
        conf, local, _ = route(bucket="no-such-bucket-" + secrets.token_hex(4))
        res = prefill(minio, build, conf, local)
        assert res.returncode == 69 and "NoSuchBucket" in res.stderr.decode(), res.describe()
    elif case == "bad-keys":
        conf, local, _ = route()
        res = prefill(minio, build, conf, local,
                      env={"AWS_ACCESS_KEY_ID": "wrong", "AWS_SECRET_ACCESS_KEY": "wrongwrong"})
        assert res.returncode == 77, res.describe()
        assert "InvalidAccessKeyId" in res.stderr.decode(), res.describe()
    elif case == "outside":
        conf, local, _ = route()
        res = prefill(minio, build, conf, "/tmp/not-a-route")
        assert res.returncode == 64 and "not inside any read route" in res.stderr.decode()
    elif case == "write-route":
        conf, local, _ = route(write_route=True)
        res = prefill(minio, build, conf, str(Path(local).parent / "out"))
        assert res.returncode == 64 and "is in a write route" in res.stderr.decode()
    else:
        conf, local, _ = route()
        res = prefill(minio, build, conf, "--jobs", "0", local)
        assert res.returncode == 64 and "--jobs wants 1..256" in res.stderr.decode()
        res = prefill(minio, build, conf)
        assert res.returncode == 64 and "usage: rwsplit prefill" in res.stderr.decode()
