"""Write routes (issue 4) end to end: unmodified programs under LD_PRELOAD write files under a
local route path, and the objects must appear under s3://<bucket>/ckpt/ of a real MinIO.

Every result is checked with independent clients (boto3 and mc), never through rwsplit: the
exact set of keys in the bucket (so a temporary key or a directory marker left behind fails
the test), each object's size and sha256, no incomplete multipart upload, and a spool
directory with no data file left once the process has exited.

Each test has its own route path (/mnt/rwsplit-wr-<tag>/ckpt, which does not exist on disk),
its own spool directory and its own cache directory. The route is configured with the
smallest multipart sizes the config allows (5 MiB), so any file above 5 MiB goes multipart.

The store-failure tests (SIGKILL before the upload, MinIO stopped or paused) use a MinIO of
their own (restartable_minio) and `rwsplit recover`.

Run from the repository root (own build dir, so as not to race other builds):
    make BUILD=/tmp/build-wr all /tmp/build-wr/tests/wr_stdio
    RWSPLIT_BUILD=/tmp/build-wr .tools/venv/bin/python -m pytest -q \
        tests/integration/test_write_routes.py
"""

import hashlib
import io
import json
import os
import queue
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.harness import proc
from tests.harness.checks import (object_sha, sha256_bytes, sha256_file,
                                  spool_files, spool_leftovers)
from tests.harness.minio import Mc, random_bucket_name
from tests.harness.proc import LOCALE, expect_ok, py

KiB = 1 << 10
MiB = 1 << 20
PART = 5 * MiB

# How a write route is configured unless a test says otherwise.
ROUTE_DEFAULTS = {
    "multipart_threshold": "5MiB",
    "part_size": "5MiB",
    "upload_workers": 4,
    "part_concurrency": 4,
    "drain_timeout": "30s",
}
DRAIN_TIMEOUT = 30.0

RUN_TIMEOUT = 90

# The local tree copied (cp -r) and extracted (tar -x) into the route: nested dirs, 0 and 1
# byte files, awkward names (space, unicode, %, +, =, a literal "%41") and one multipart file.
TREE = {
    "a.txt": 100,
    "empty.bin": 0,
    "one.bin": 1,
    "sub/x 1.bin": 4 * KiB,
    "sub/deep/ünï 文件.txt": 5000,
    "sub/deep/pct%41+=.bin": 777,
    "sub/deep/er/leaf.dat": 110 * KiB,
    "big/six-6m.bin": 6 * MiB + 3,
}
BIG_SIZE = 64 * MiB + 12345        # 13 parts of 5 MiB

SUMMARY_RE = re.compile(rb"^rwsplit\[(\d+)\][^\n]*write summary:([^\n]*)$", re.MULTILINE)
UPLOADED_RE = re.compile(rb"(\d+)\s+(?:\w+\s+){0,2}uploaded")


# -- helpers ---------------------------------------------------------------------------------


def blob(seed, n):
    """n deterministic pseudo-random bytes (the probe scripts compute the same)."""
    return random.Random(seed).randbytes(n)


def multipart_etag(path, part=PART):
    """The ETag S3 gives an object uploaded in parts of `part` bytes."""
    digests, count = b"", 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(part), b""):
            digests += hashlib.md5(chunk).digest()
            count += 1
    return f"{hashlib.md5(digests).hexdigest()}-{count}"


class Result(proc.Result):
    def summaries(self):
        """[(pid, text)] of the rwsplit `write summary:` lines."""
        return [(int(m.group(1)), m.group(2)) for m in SUMMARY_RE.finditer(self.stderr)]


def run(args, env, timeout=RUN_TIMEOUT, stdin_data=None):
    return proc.run(args, env, timeout, stdin_data, Result)


class Child:
    """A preloaded program driven step by step: it prints a word per step on stdout and
    waits for a line on stdin before the next one."""

    def __init__(self, args, env):
        self.args = [str(a) for a in args]
        self.start = time.monotonic()
        self.proc = subprocess.Popen(self.args, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.lines = queue.Queue()
        self.out = bytearray()
        self.err = bytearray()
        self._threads = [threading.Thread(target=self._pump_out, daemon=True),
                         threading.Thread(target=self._pump_err, daemon=True)]
        for t in self._threads:
            t.start()

    def _pump_out(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.out += line
            self.lines.put(line)
        self.lines.put(None)

    def _pump_err(self):
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):
            self.err += chunk

    def expect(self, word, timeout=60):
        """Waits for the next stdout line, which must start with word; returns the line."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"no {word!r} from {self.args!r} in {timeout} s\n"
                                 f"stderr: {bytes(self.err)[-3000:]!r}")
        assert line is not None and line.startswith(word.encode()), (
            f"expected {word!r}, got {line!r} from {self.args!r}; "
            f"exit {self.proc.poll()}\nstderr: {bytes(self.err)[-3000:]!r}")
        return line.decode().strip()

    def send(self, text="go"):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout=RUN_TIMEOUT):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(timeout=10)
            for t in self._threads:
                t.join(timeout=5)
            raise AssertionError(f"{self.args!r} still running after {timeout} s (killed)\n"
                                 f"stderr: {bytes(self.err)[-3000:]!r}")
        for t in self._threads:
            t.join(timeout=10)
        return Result(self.args, self.proc.returncode, bytes(self.out), bytes(self.err),
                      time.monotonic() - self.start)


class WRoute:
    """Write routes of one config: base/<name> -> s3://bucket/<prefix>, one spool."""

    def __init__(self, server, build, bucket, base, prefixes, spool, conf, cache_dir):
        self.server = server
        self.build = build
        self.bucket = bucket
        self.base = base
        self.prefixes = prefixes      # route name -> object prefix
        self.spool = spool
        self.conf = conf
        self.cache_dir = cache_dir
        self.children = []

    @property
    def local(self):
        return self.path()

    def path(self, rel="", route="ckpt"):
        root = f"{self.base}/{route}"
        return f"{root}/{rel}" if rel else root

    def key(self, rel, route="ckpt"):
        return self.prefixes[route] + rel

    def env(self, log="info", extra=None):
        return proc.preload_env(self.server, self.build.lib, self.conf, log, extra)

    def run(self, args, timeout=RUN_TIMEOUT, log="info", stdin_data=None, extra_env=None):
        return run(args, self.env(log, extra_env), timeout, stdin_data)

    def spawn(self, args, log="info", extra_env=None):
        child = Child(args, self.env(log, extra_env))
        self.children.append(child)
        return child

    def agent_pids(self):
        """Pids of this config's tree agents (`rwsplit agent --tree BASE/...`)."""
        return proc.tree_agents(self.base)

    def kill_agents(self, sig=signal.SIGKILL):
        """Kills the agents and waits (bounded) until they are gone."""
        proc.kill_tree_agents(self.base, sig)

    def agent_log(self):
        """What the agents logged (SPOOL/u<uid>/<id>/agent.log, at the level the process
        that started them had)."""
        return "".join(p.read_text(errors="replace")
                       for p in sorted(Path(self.spool).glob("u*/*/agent.log")))

    def recover(self, timeout=120, extra_env=None):
        """`rwsplit recover -c CONF` (not preloaded)."""
        env = self.server.child_env({"RWSPLIT_LOG": "info", "LC_ALL": LOCALE})
        env.pop("LD_PRELOAD", None)
        env.pop("RWSPLIT_CONFIG", None)
        env.update(extra_env or {})
        return run([self.build.require(self.build.rwsplit), "recover", "-c", self.conf], env,
                   timeout)


def uploaded_counts(res):
    """The `N uploaded` count of every write summary line (None where there is none)."""
    out = []
    for _pid, text in res.summaries():
        m = UPLOADED_RE.search(text)
        out.append(int(m.group(1)) if m else None)
    return out


def expect_summary(res, uploaded=None):
    """One write summary line (this was one process that wrote), with `uploaded` files."""
    sums = res.summaries()
    assert len(sums) == 1, f"expected one `write summary:` line\n{res.describe()}"
    if uploaded is not None:
        assert uploaded_counts(res) == [uploaded], (
            f"expected {uploaded} uploaded in the summary\n{res.describe()}")


# -- checks with independent clients ---------------------------------------------------------


def wait_for_keys(boto, bucket, keys, timeout=30.0):
    """Polls (bounded) until every key is in the bucket, for uploads no exit waited for."""
    deadline = time.monotonic() + timeout
    while not set(keys) <= set(bucket_objects(boto, bucket)):
        if time.monotonic() > deadline:
            raise AssertionError(f"not in the bucket after {timeout} s: "
                                 f"{set(keys) - set(bucket_objects(boto, bucket))}")
        time.sleep(0.1)


def bucket_objects(boto, bucket):
    """key -> {Size, ETag} of everything in the bucket."""
    out = {}
    for page in boto.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = {"Size": obj["Size"], "ETag": obj["ETag"].strip('"')}
    return out


def object_bytes(boto, bucket, key):
    return boto.get_object(Bucket=bucket, Key=key)["Body"].read()


def object_exists(boto, bucket, key):
    from botocore.exceptions import ClientError
    try:
        boto.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def pending_multipart(boto, bucket):
    resp = boto.list_multipart_uploads(Bucket=bucket)
    return [(u["Key"], u["UploadId"]) for u in resp.get("Uploads", [])]


def _expected_digest(value):
    """(size, sha256) of bytes or of a local file (Path)."""
    if isinstance(value, (bytes, bytearray)):
        return len(value), sha256_bytes(value)
    return os.path.getsize(value), sha256_file(value)


def assert_objects(boto, bucket, expected, multipart_clean=True, context=""):
    """The bucket holds exactly the keys of expected (key -> bytes | Path), with those
    contents, and (multipart_clean) no incomplete multipart upload."""
    got = bucket_objects(boto, bucket)
    assert sorted(got) == sorted(expected), (
        f"keys differ\n  missing: {sorted(set(expected) - set(got))}\n"
        f"  unexpected: {sorted(set(got) - set(expected))}\n{context}")
    for key, value in expected.items():
        want = _expected_digest(value)
        have = object_sha(boto, bucket, key)
        if isinstance(value, (bytes, bytearray)) and have != want and len(value) < 200:
            have = (have, object_bytes(boto, bucket, key))
            want = (want, bytes(value))
        assert have == want, f"content of {key}: got {have}, expected {want}\n{context}"
    if multipart_clean:
        assert pending_multipart(boto, bucket) == [], f"incomplete multipart uploads\n{context}"
    return got


def assert_spool_clean(spool, context=""):
    left = spool_leftovers(spool)
    assert not left, f"spool {spool} still holds files after exit: {left}\n{context}"


def spool_holds(spool, sha):
    """Whether some regular file in the spool has this sha256 (layout-independent)."""
    for rel, _size in spool_files(spool):
        try:
            if sha256_file(Path(spool) / rel) == sha:
                return True
        except OSError:
            pass
    return False


# -- probe scripts ---------------------------------------------------------------------------

SCRIPTS = {
    # Opens every DST, copies SRC into it, prints "written", waits for a line on stdin, closes
    # them all and prints "closed SECONDS"; then exits, or sleeps (to be killed) with "sleep".
    "hold.py": r"""
        import json, os, shutil, sys, time
        spec, then = json.loads(sys.argv[1]), sys.argv[2]
        files = []
        for dst, src in spec:
            f = open(dst, "wb")
            with open(src, "rb") as s:
                shutil.copyfileobj(s, f, 1 << 20)
            f.flush()
            files.append(f)
        print("written", flush=True)
        sys.stdin.readline()
        t = time.monotonic()
        for f in files:
            f.close()
        print("closed %.3f" % (time.monotonic() - t), flush=True)
        if then == "sleep":
            time.sleep(600)
    """,
    # Writes files, then stats, lists and reads them back at once and after a pause.
    "raw.py": r"""
        import hashlib, json, os, random, stat, sys, time
        root, mode = sys.argv[1], sys.argv[2]
        FILES = {"raw/small.txt": 10, "raw/three.bin": 3 << 20, "raw/seven.bin": (7 << 20) + 1}
        blob = lambda seed, n: random.Random(seed).randbytes(n)
        sha = lambda b: hashlib.sha256(b).hexdigest()
        if mode == "write":
            os.makedirs(os.path.join(root, "raw"), exist_ok=True)
            for rel, n in FILES.items():
                with open(os.path.join(root, rel), "wb") as f:
                    f.write(blob(rel, n))
        def look():
            names = sorted(os.listdir(os.path.join(root, "raw")))
            top = sorted(os.listdir(root))
            d = {}
            for rel, n in FILES.items():
                p = os.path.join(root, rel)
                st = os.stat(p)
                with open(p, "rb") as f:
                    data = f.read()
                d[rel] = [st.st_size, stat.S_ISREG(st.st_mode), os.path.basename(rel) in names,
                          len(data), sha(data) == sha(blob(rel, n)), os.path.getsize(p)]
            return {"names": names, "top": top, "files": d,
                    "raw_is_dir": stat.S_ISDIR(os.stat(os.path.join(root, "raw")).st_mode)}
        out = {"immediate": look()}
        if mode == "write":
            time.sleep(1.5)
            out["later"] = look()
        print(json.dumps(out))
    """,
    # fsync / fdatasync upload synchronously; steps driven by the test.
    "sync.py": r"""
        import os, random, sys, time
        root = sys.argv[1]
        blob = lambda seed, n: random.Random(seed).randbytes(n)
        os.makedirs(os.path.join(root, "sync"), exist_ok=True)
        def write_all(fd, data):
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        fa = os.open(os.path.join(root, "sync/a.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o644)
        fb = os.open(os.path.join(root, "sync/b.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o644)
        write_all(fa, blob("a", (6 << 20) + 11))
        write_all(fb, blob("b", 1000))
        print("written", flush=True)
        sys.stdin.readline()
        t = time.monotonic()
        os.fsync(fa)
        os.fdatasync(fb)
        print("synced %.3f" % (time.monotonic() - t), flush=True)
        sys.stdin.readline()
        write_all(fa, b"tail")
        os.close(fa)
        os.close(fb)
        print("closed", flush=True)
    """,
    # multiprocessing (fork) workers, an inherited write fd, a subprocess and a shell
    # ("graceful": every worker exits on its own), or a Pool left by its with-block, which
    # terminates the workers with SIGTERM ("terminate").
    "procs.py": r"""
        import json, multiprocessing as mp, os, random, subprocess, sys
        root, mode = sys.argv[1], sys.argv[2]
        SIZES = [0, 1, 1000, 300 * 1024, (6 << 20) + 7]
        blob = lambda seed, n: random.Random(seed).randbytes(n)
        def write(rel, n):
            with open(os.path.join(root, rel), "wb") as f:
                f.write(blob(rel, n))
        def pool_task(i):
            for j in range(3):
                write(f"pool/w{i}-{j}.bin", SIZES[(i + j) % len(SIZES)])
            return os.getpid()
        def proc_task(i):
            write(f"proc/p{i}.bin", SIZES[(i + 2) % len(SIZES)])
        def inherited(fd):
            os.write(fd, b"child;")
            os.close(fd)
        if __name__ == "__main__":
            ctx = mp.get_context("fork")
            os.makedirs(os.path.join(root, "pool"), exist_ok=True)
            if mode == "terminate":
                with ctx.Pool(4) as pool:      # __exit__ terminates the workers (SIGTERM)
                    pids = pool.map(pool_task, range(8))
                print(json.dumps({"parent": os.getpid(), "pool": sorted(set(pids))}))
                sys.exit(0)
            for d in ("proc", "sub"):
                os.makedirs(os.path.join(root, d), exist_ok=True)
            fd = os.open(os.path.join(root, "shared.log"),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b"parent-1;")
            p = ctx.Process(target=inherited, args=(fd,))
            p.start()
            p.join()
            assert p.exitcode == 0, p.exitcode
            os.write(fd, b"parent-2;")
            pool = ctx.Pool(4)
            pids = pool.map(pool_task, range(8))
            pool.close()
            pool.join()
            procs = [ctx.Process(target=proc_task, args=(i,)) for i in range(4)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
                assert p.exitcode == 0, p.exitcode
            os.write(fd, b"parent-3;")
            os.close(fd)
            subprocess.run([sys.executable, "-c",
                            "import sys; open(sys.argv[1], 'wb').write(b'from subprocess' * 999)",
                            os.path.join(root, "sub/child.txt")], check=True, timeout=60)
            subprocess.run(["sh", "-c", 'echo hello from sh > "$1"', "sh",
                            os.path.join(root, "sub/sh.txt")], check=True, timeout=60)
            print(json.dumps({"parent": os.getpid(), "pool": sorted(set(pids))}))
    """,
    # errno of the calls that must fail, and of those that must work beside them.
    "errors.py": r"""
        import errno, json, os, sys
        ckpt, logs, local, prefix = sys.argv[1:5]
        out = {}
        def probe(name, fn):
            try:
                r = fn()
                out[name] = "OK" if r is None else r
            except OSError as e:
                out[name] = errno.errorcode.get(e.errno, str(e.errno))
        def write(p, data=b"x"):
            with open(p, "wb") as f:
                f.write(data)
        def rel_for_key(n):
            # a relative path whose key (prefix + rel) is n bytes: 200-byte components
            need, parts = n - len(prefix.encode()), []
            while need > 201:
                parts.append("d" * 200)
                need -= 201
            parts.append("f" * need)
            return "/".join(parts)
        long_ok, long_bad = rel_for_key(1024), rel_for_key(1025)
        for rel in (long_ok, long_bad):
            d = os.path.dirname(rel)
            probe("makedirs-" + str(len(prefix) + len(rel)),
                  lambda: os.makedirs(os.path.join(ckpt, d), exist_ok=True))
        probe("open_w_key_1024", lambda: write(os.path.join(ckpt, long_ok)))
        probe("open_w_key_1025", lambda: write(os.path.join(ckpt, long_bad)))
        probe("os_open_creat_key_1025", lambda: os.close(os.open(
            os.path.join(ckpt, long_bad), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)))
        probe("open_r_missing", lambda: open(os.path.join(ckpt, "missing.bin"), "rb").close())
        probe("os_open_r_missing", lambda: os.close(os.open(os.path.join(ckpt, "missing.bin"),
                                                          os.O_RDONLY)))
        probe("stat_missing", lambda: os.stat(os.path.join(ckpt, "missing.bin")) and None)
        probe("open_r_missing_dir", lambda: open(os.path.join(ckpt, "no/such/f"), "rb").close())
        write(os.path.join(ckpt, "a.bin"), b"A" * 1000)
        probe("rename_to_other_route", lambda: os.rename(os.path.join(ckpt, "a.bin"),
                                                         os.path.join(logs, "a.bin")))
        probe("rename_to_local", lambda: os.rename(os.path.join(ckpt, "a.bin"),
                                                   os.path.join(local, "a.bin")))
        write(os.path.join(local, "l.bin"), b"L" * 10)
        probe("rename_from_local", lambda: os.rename(os.path.join(local, "l.bin"),
                                                     os.path.join(ckpt, "l.bin")))
        probe("replace_to_other_route", lambda: os.replace(os.path.join(ckpt, "a.bin"),
                                                           os.path.join(logs, "a.bin")))
        probe("a_size_after", lambda: os.path.getsize(os.path.join(ckpt, "a.bin")))
        probe("local_a_exists", lambda: os.path.exists(os.path.join(local, "a.bin")))
        probe("logs_a_exists", lambda: os.path.exists(os.path.join(logs, "a.bin")))
        print(json.dumps(out))
    """,
}


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    d = tmp_path_factory.mktemp("wr-scripts")
    for name, text in SCRIPTS.items():
        (d / name).write_text(textwrap.dedent(text).lstrip())
    return d


@pytest.fixture(scope="module")
def local_tree(tmp_path_factory):
    """TREE on local disk: (root, {rel: Path})."""
    root = tmp_path_factory.mktemp("wr-tree") / "tree"
    files = {}
    for rel, size in TREE.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        files[rel] = p
    (root / "one.bin").write_bytes(b"\x5a")
    return root, files


@pytest.fixture(scope="module")
def big_src(tmp_path_factory):
    """A BIG_SIZE random file on local disk (13 parts of 5 MiB)."""
    p = tmp_path_factory.mktemp("wr-big") / "big.bin"
    with open(p, "wb") as f:
        for _ in range(BIG_SIZE // MiB):
            f.write(os.urandom(MiB))
        f.write(os.urandom(BIG_SIZE % MiB))
    return p


@pytest.fixture
def make_wroute(minio, build, tmp_path):
    """make_wroute(bucket, server=None, routes={"ckpt": "ckpt/"}, store={}, spool=None,
    create_spool=True, **options) -> WRoute with its own route paths, spool and cache dir."""
    build.require(build.lib)
    made = []

    def make(bucket, server=None, routes=None, store=None, spool=None, create_spool=True,
             **options):
        server = server or minio
        tag = secrets.token_hex(5)
        base = f"/mnt/rwsplit-wr-{tag}"
        assert not os.path.exists(base)
        routes = routes or {"ckpt": "ckpt/"}
        spool = Path(spool or tmp_path / f"spool-{tag}")
        if create_spool:
            spool.mkdir(parents=True, exist_ok=True)
        cache_dir = Path(f"/dev/shm/rwsplit-wr-{tag}")
        opts = dict(ROUTE_DEFAULTS)
        opts["spool"] = spool
        opts.update(options)
        conf = tmp_path / f"rwsplit-{tag}.conf"
        conf.write_text(f"[global]\ncache_dir = {cache_dir}\n\n" + server.config_text(
            routes=[("write", f"{base}/{name}", f"s3://{bucket}/{prefix}", opts)
                    for name, prefix in routes.items()], **(store or {})))
        route = WRoute(server, build, bucket, base, dict(routes), spool, conf, cache_dir)
        made.append(route)
        return route

    yield make
    for route in made:
        route.kill_agents()
        shutil.rmtree(route.base, ignore_errors=True)
        for child in route.children:
            child.kill()
            try:
                child.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(route.cache_dir, ignore_errors=True)
        shutil.rmtree(route.spool, ignore_errors=True)


@pytest.fixture
def wr(make_wroute, bucket):
    return make_wroute(bucket)


@pytest.fixture
def own_store(restartable_minio):
    """A bucket on a MinIO of the test's own (which it may pause, stop and restart)."""
    mc = Mc(restartable_minio)
    name = random_bucket_name("wr")
    mc.mb(name)
    try:
        yield SimpleNamespace(server=restartable_minio, mc=mc, bucket=name,
                              boto=restartable_minio.boto3_client())
    finally:
        mc.close()


# -- programs writing into the route ---------------------------------------------------------


def test_cp_r_tree(wr, boto, mc, local_tree):
    """cp -r of a local tree (nested dirs, 0-byte and multipart files, awkward names) creates
    exactly one object per file, and nothing else (no directory markers, no temp keys)."""
    root, files = local_tree
    res = expect_ok(wr.run(["cp", "-r", root, wr.path("run1")]))
    expect_summary(res, uploaded=len(files))
    expected = {wr.key(f"run1/{rel}"): p for rel, p in files.items()}
    assert_objects(boto, wr.bucket, expected, context=res.describe())
    # mc agrees on the key set and sizes.
    listed = {e["key"]: e["size"] for e in mc.ls(f"{wr.bucket}/ckpt/")}
    assert listed == {f"run1/{rel}": p.stat().st_size for rel, p in files.items()}
    assert_spool_clean(wr.spool, res.describe())


def test_tar_extract(wr, boto, local_tree, tmp_path):
    """tar -x -C route: files (and their directories) land as objects."""
    root, files = local_tree
    archive = tmp_path / "t.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(root, arcname="untar")
    res = expect_ok(wr.run(["tar", "-xf", archive, "-C", wr.local]))
    expect_summary(res, uploaded=len(files))
    expected = {wr.key(f"untar/{rel}"): p for rel, p in files.items()}
    assert_objects(boto, wr.bucket, expected, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_dd_multipart(wr, boto, mc, big_src):
    """dd of 64 MiB from /dev/urandom and of a known file goes multipart (ETag "-13" with
    5 MiB parts); a 100 KiB dd is one PutObject (plain MD5 ETag)."""
    res = expect_ok(wr.run(["dd", "if=/dev/urandom", f"of={wr.path('big')}", "bs=1M",
                            "count=64", "iflag=fullblock", "status=none"]))
    expect_summary(res, uploaded=1)
    res2 = expect_ok(wr.run(["dd", f"if={big_src}", f"of={wr.path('known')}", "bs=1M",
                             "status=none"]))
    expect_summary(res2, uploaded=1)
    small = os.urandom(100 * KiB)
    res3 = expect_ok(wr.run(["dd", f"of={wr.path('small')}", "bs=4k", "status=none"],
                            stdin_data=small))
    got = bucket_objects(boto, wr.bucket)
    assert sorted(got) == [wr.key("big"), wr.key("known"), wr.key("small")], res3.describe()
    assert got[wr.key("big")]["Size"] == 64 * MiB
    assert re.fullmatch(r"[0-9a-f]{32}-13", got[wr.key("big")]["ETag"]), got
    assert got[wr.key("known")]["ETag"] == multipart_etag(big_src), got
    assert mc.stat(f"{wr.bucket}/{wr.key('known')}")["etag"].strip('"') == \
        multipart_etag(big_src)
    assert got[wr.key("small")]["ETag"] == hashlib.md5(small).hexdigest(), got
    assert object_sha(boto, wr.bucket, wr.key("known")) == _expected_digest(big_src)
    assert object_sha(boto, wr.bucket, wr.key("small")) == _expected_digest(small)
    assert pending_multipart(boto, wr.bucket) == []
    assert_spool_clean(wr.spool)


def test_shell_append_twice(wr, boto):
    """echo a >> route/log.txt in two processes: the second one appends to the object the
    first one uploaded."""
    for i in range(2):
        res = expect_ok(wr.run(["sh", "-c", 'echo a >> "$1"', "sh", wr.path("log.txt")]))
        expect_summary(res, uploaded=1)
    assert_objects(boto, wr.bucket, {wr.key("log.txt"): b"a\na\n"})
    assert_spool_clean(wr.spool)


def test_upload_thread_is_named(wr, boto):
    """Uploads run in the tree's agent, on threads called rws-upload (top -H, perf)."""
    script = "import sys\nopen(sys.argv[1], 'w').write('x')\n"
    expect_ok(wr.run([sys.executable, "-c", script, wr.path("named.txt")]))
    pids = wr.agent_pids()
    assert len(pids) == 1, pids
    names = [Path(p).read_text().strip() for p in Path(f"/proc/{pids[0]}/task").glob("*/comm")]
    assert "rws-upload" in names, names
    assert_objects(boto, wr.bucket, {wr.key("named.txt"): b"x"})

def test_python_open_modes(wr, boto, mc):
    """open('w'), 'wb', 'x' (and 'x' again: EEXIST), 'a' and 'r+b' on objects that exist
    only in the store (copied into the spool first), and truncating 'w' over one."""
    mc.put_bytes(f"{wr.bucket}/{wr.key('existing/append.txt')}", b"line1\n")
    mc.put_bytes(f"{wr.bucket}/{wr.key('existing/patch.bin')}", b"hello world")
    mc.put_bytes(f"{wr.bucket}/{wr.key('existing/trunc.txt')}", b"x" * 5000)
    script = textwrap.dedent(r"""
        import errno, json, os, sys
        r = sys.argv[1]
        out = {}
        with open(os.path.join(r, "text.txt"), "w", encoding="utf-8") as f:
            f.write("héllo\nwörld\n")
        with open(os.path.join(r, "bin.bin"), "wb") as f:
            f.write(bytes(range(256)) * 10)
        with open(os.path.join(r, "excl.txt"), "x") as f:
            f.write("first")
        try:
            open(os.path.join(r, "excl.txt"), "x")
            out["excl_again"] = "OK"
        except OSError as e:
            out["excl_again"] = errno.errorcode[e.errno]
        with open(os.path.join(r, "existing/append.txt"), "a") as f:
            f.write("line2\n")
        with open(os.path.join(r, "existing/patch.bin"), "r+b") as f:
            out["patch_read"] = f.read(5).decode()
            f.seek(6)
            f.write(b"WORLD")
        with open(os.path.join(r, "existing/trunc.txt"), "w") as f:
            f.write("short")
        print(json.dumps(out))
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert json.loads(res.stdout) == {"excl_again": "EEXIST", "patch_read": "hello"}
    expected = {
        wr.key("text.txt"): "héllo\nwörld\n".encode(),
        wr.key("bin.bin"): bytes(range(256)) * 10,
        wr.key("excl.txt"): b"first",
        wr.key("existing/append.txt"): b"line1\nline2\n",
        wr.key("existing/patch.bin"): b"hello WORLD",
        wr.key("existing/trunc.txt"): b"short",
    }
    assert_objects(boto, wr.bucket, expected, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_rename_checkpoint_pattern(wr, boto):
    """Write a temp file, close, rename onto the final name: only the final key exists. Also
    for a multipart file, for a file already uploaded by fsync, and (in a second process) for
    an object that is only in the store (CopyObject + DeleteObject)."""
    script = textwrap.dedent(r"""
        import os, random, sys
        r = sys.argv[1]
        blob = lambda seed, n: random.Random(seed).randbytes(n)
        os.makedirs(os.path.join(r, "run"), exist_ok=True)
        for step in (1, 2):
            tmp = os.path.join(r, "run", f"ckpt-{step}.tmp")
            with open(tmp, "wb") as f:
                f.write(blob(f"ckpt-{step}", 1000 * step))
            os.rename(tmp, os.path.join(r, "run", f"ckpt-{step}"))
        with open(os.path.join(r, "model.bin.tmp"), "wb") as f:
            f.write(blob("model", (7 << 20) + 5))
        os.rename(os.path.join(r, "model.bin.tmp"), os.path.join(r, "model.bin"))
        with open(os.path.join(r, "synced.tmp"), "wb") as f:
            f.write(blob("synced", 3000))
            f.flush()
            os.fsync(f.fileno())
        os.rename(os.path.join(r, "synced.tmp"), os.path.join(r, "synced"))
        print(sorted(os.listdir(r)), sorted(os.listdir(os.path.join(r, "run"))))
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert res.stdout.decode().strip() == \
        "['model.bin', 'run', 'synced'] ['ckpt-1', 'ckpt-2']", res.describe()
    expected = {
        wr.key("run/ckpt-1"): blob("ckpt-1", 1000),
        wr.key("run/ckpt-2"): blob("ckpt-2", 2000),
        wr.key("model.bin"): blob("model", 7 * MiB + 5),
        wr.key("synced"): blob("synced", 3000),
    }
    assert_objects(boto, wr.bucket, expected, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())

    # A second process renames objects that are only in the store.
    res = expect_ok(wr.run([sys.executable, "-c",
                            "import os, sys; r = sys.argv[1]; "
                            "os.rename(r + '/run/ckpt-1', r + '/run/ckpt-1.old'); "
                            "os.rename(r + '/model.bin', r + '/model-final.bin'); "
                            "print(sorted(os.listdir(r)), sorted(os.listdir(r + '/run')))",
                            wr.local]))
    assert res.stdout.decode().strip() == \
        "['model-final.bin', 'run', 'synced'] ['ckpt-1.old', 'ckpt-2']", res.describe()
    expected[wr.key("run/ckpt-1.old")] = expected.pop(wr.key("run/ckpt-1"))
    expected[wr.key("model-final.bin")] = expected.pop(wr.key("model.bin"))
    assert_objects(boto, wr.bucket, expected, context=res.describe())


def test_listing_right_after_rename(wr, boto):
    """The checkpoint pattern twenty times over in one process (multipart temp file renamed while
    its upload may be in flight, fsync'd temp file renamed after it was uploaded): each time,
    os.listdir right after the renames shows exactly the final names."""
    script = textwrap.dedent(r"""
        import json, os, random, sys
        root = sys.argv[1]
        blob = lambda seed, n: random.Random(seed).randbytes(n)
        wrong = {}
        for i in range(20):
            r = os.path.join(root, f"step{i}")
            os.makedirs(r, exist_ok=True)
            with open(os.path.join(r, "model.bin.tmp"), "wb") as f:
                f.write(blob(f"model{i}", (6 << 20) + i))
            os.rename(os.path.join(r, "model.bin.tmp"), os.path.join(r, "model.bin"))
            with open(os.path.join(r, "meta.tmp"), "wb") as f:
                f.write(blob(f"meta{i}", 3000))
                f.flush()
                os.fsync(f.fileno())
            os.rename(os.path.join(r, "meta.tmp"), os.path.join(r, "meta"))
            names = sorted(os.listdir(r))
            if names != ["meta", "model.bin"]:
                wrong[i] = names
        print(json.dumps(wrong))
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert json.loads(res.stdout) == {}, f"listings right after rename:\n{res.describe()}"
    expected = {}
    for i in range(20):
        expected[wr.key(f"step{i}/model.bin")] = blob(f"model{i}", 6 * MiB + i)
        expected[wr.key(f"step{i}/meta")] = blob(f"meta{i}", 3000)
    assert_objects(boto, wr.bucket, expected, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_rename_directory(wr, boto, mc):
    """Renaming a directory moves every key below it: objects already in the store
    (CopyObject + DeleteObject), files still pending (retargeted), and a nested prefix. The
    old name is gone; mv of a directory works the same way."""
    mc.put_bytes(f"{wr.bucket}/{wr.key('run/old1')}", blob("old1", 1000))
    mc.put_bytes(f"{wr.bucket}/{wr.key('run/sub/old2')}", blob("old2", 2000))
    script = textwrap.dedent(r"""
        import os, random, sys
        r = sys.argv[1]
        with open(os.path.join(r, "run", "new1"), "wb") as f:
            f.write(random.Random("new1").randbytes(3000))
        with open(os.path.join(r, "run", "sub", "new2"), "wb") as f:
            f.write(random.Random("new2").randbytes(6 << 20))
        os.rename(os.path.join(r, "run"), os.path.join(r, "run2"))
        print(os.path.exists(os.path.join(r, "run")), sorted(os.listdir(r)),
              sorted(os.listdir(os.path.join(r, "run2"))),
              sorted(os.listdir(os.path.join(r, "run2", "sub"))))
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert res.stdout.decode().strip() == (
        "False ['run2'] ['new1', 'old1', 'sub'] ['new2', 'old2']"), res.describe()
    expected = {
        wr.key("run2/old1"): blob("old1", 1000),
        wr.key("run2/sub/old2"): blob("old2", 2000),
        wr.key("run2/new1"): blob("new1", 3000),
        wr.key("run2/sub/new2"): blob("new2", 6 * MiB),
    }
    assert_objects(boto, wr.bucket, expected, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())

    res = expect_ok(wr.run(["mv", f"{wr.local}/run2", f"{wr.local}/final"]))
    assert_objects(boto, wr.bucket, {k.replace("/run2/", "/final/"): v
                                     for k, v in expected.items()}, context=res.describe())


def test_directories(wr, boto, mc):
    """Prefixes behave as directories: mkdir -p, stat, rmdir of an empty one (ENOTEMPTY while
    something is below, in the store, pending or a sub-directory), a directory that stays
    after its last file is removed until rmdir (so `rm -r` and shutil.rmtree work), renaming an empty
    directory, and EINVAL for a rename into itself."""
    mc.put_bytes(f"{wr.bucket}/{wr.key('stored/a')}", b"a")
    script = textwrap.dedent(r"""
        import errno, os, shutil, stat, subprocess, sys
        r = sys.argv[1]
        def err(fn, *a):
            try:
                fn(*a)
                return "ok"
            except OSError as e:
                return errno.errorcode[e.errno]
        p = lambda *n: os.path.join(r, *n)
        out = []
        os.makedirs(p("a", "b", "c"))
        out.append(stat.S_ISDIR(os.stat(p("a", "b")).st_mode))
        out.append(err(os.rmdir, p("a")))            # a/b below it
        out.append(err(os.rmdir, p("stored")))       # a key in the store
        with open(p("a", "b", "c", "f"), "w") as f:
            f.write("x")
        out.append(err(os.rmdir, p("a", "b", "c")))  # a pending file
        os.remove(p("a", "b", "c", "f"))
        out.append(sorted(os.listdir(p("a", "b", "c"))))
        out.append(err(os.rmdir, p("a", "b", "c")))
        out.append(err(os.rename, p("a"), p("a", "b", "x")))
        out.append(err(os.rename, p("a"), p("z")))
        out.append(sorted(os.listdir(r)) + sorted(os.listdir(p("z"))))
        shutil.rmtree(p("z"))
        out.append(subprocess.run(["rm", "-r", p("stored")]).returncode)
        out.append(sorted(os.listdir(r)))
        out.append(err(os.rmdir, p("nothing")))
        print(out)
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert res.stdout.decode().strip() == str([
        True, "ENOTEMPTY", "ENOTEMPTY", "ENOTEMPTY", [], "ok", "EINVAL", "ok",
        ["stored", "z", "b"], 0, [], "ENOENT"]), res.describe()
    assert_objects(boto, wr.bucket, {}, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_rename_noreplace(wr, boto, mc):
    """renameat2(RENAME_NOREPLACE) fails with EEXIST, changing nothing, when the target is an
    object in the store or a file still pending, and renames when it is free; `mv -n` (which
    uses it) keeps the existing target."""
    mc.put_bytes(f"{wr.bucket}/{wr.key('stored')}", b"stored")
    script = textwrap.dedent(r"""
        import ctypes, errno, os, sys
        r = sys.argv[1]
        libc = ctypes.CDLL(None, use_errno=True)
        AT_FDCWD, RENAME_NOREPLACE = -100, 1
        def noreplace(a, b):
            rc = libc.renameat2(AT_FDCWD, os.fsencode(os.path.join(r, a)), AT_FDCWD,
                                os.fsencode(os.path.join(r, b)), RENAME_NOREPLACE)
            return errno.errorcode.get(ctypes.get_errno(), "?") if rc else "ok"
        for name in ("src", "pending"):
            with open(os.path.join(r, name), "wb") as f:
                f.write(name.encode())
        print(noreplace("src", "stored"), noreplace("src", "pending"),
              noreplace("src", "free"), sorted(os.listdir(r)))
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert res.stdout.decode().strip() == \
        "EEXIST EEXIST ok ['free', 'pending', 'stored']", res.describe()
    expected = {wr.key("stored"): b"stored", wr.key("pending"): b"pending",
                wr.key("free"): b"src"}
    assert_objects(boto, wr.bucket, expected, context=res.describe())

    res = expect_ok(wr.run(["mv", "-n", f"{wr.local}/free", f"{wr.local}/stored"]))
    assert_objects(boto, wr.bucket, expected, context=res.describe())


def test_replace_over_existing_object(wr, boto, mc):
    """os.replace of a new file over an existing object, and of one existing object over
    another: the target has the new content, the source key is gone."""
    mc.put_bytes(f"{wr.bucket}/{wr.key('model.bin')}", b"old" * 1000)
    mc.put_bytes(f"{wr.bucket}/{wr.key('other.bin')}", b"other" * 100)
    script = textwrap.dedent(r"""
        import os, sys
        r = sys.argv[1]
        with open(os.path.join(r, "model.bin.tmp"), "wb") as f:
            f.write(b"new" * 2000)
        os.replace(os.path.join(r, "model.bin.tmp"), os.path.join(r, "model.bin"))
        print(os.path.getsize(os.path.join(r, "model.bin")), sorted(os.listdir(r)))
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert res.stdout.decode().split() == ["6000", "['model.bin',", "'other.bin']"], \
        res.describe()
    assert_objects(boto, wr.bucket, {wr.key("model.bin"): b"new" * 2000,
                                     wr.key("other.bin"): b"other" * 100})
    res = expect_ok(wr.run([sys.executable, "-c",
                            "import os, sys; r = sys.argv[1]; "
                            "os.replace(r + '/other.bin', r + '/model.bin'); "
                            "print(sorted(os.listdir(r)))", wr.local]))
    assert res.stdout.decode().strip() == "['model.bin']", res.describe()
    assert_objects(boto, wr.bucket, {wr.key("model.bin"): b"other" * 100})
    assert_spool_clean(wr.spool)


def test_remove(wr, boto, mc):
    """os.remove/os.unlink of objects in the store, of a pending file (the upload is
    cancelled), and rm(1): the objects are gone."""
    for rel in ("gone.bin", "dir/also.bin", "rm-me.txt", "keep-old.txt"):
        mc.put_bytes(f"{wr.bucket}/{wr.key(rel)}", rel.encode() * 10)
    script = textwrap.dedent(r"""
        import os, random, sys
        r = sys.argv[1]
        os.remove(os.path.join(r, "gone.bin"))
        os.unlink(os.path.join(r, "dir/also.bin"))
        with open(os.path.join(r, "pending.tmp"), "wb") as f:
            f.write(b"p" * 100)
        os.remove(os.path.join(r, "pending.tmp"))
        with open(os.path.join(r, "big.tmp"), "wb") as f:
            f.write(random.Random(1).randbytes((6 << 20) + 1))
        os.remove(os.path.join(r, "big.tmp"))
        with open(os.path.join(r, "keep.txt"), "wb") as f:
            f.write(b"keep")
        print([os.path.exists(os.path.join(r, n))
               for n in ("gone.bin", "dir/also.bin", "pending.tmp", "big.tmp", "keep.txt")])
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert res.stdout.decode().strip() == "[False, False, False, False, True]", res.describe()
    res2 = expect_ok(wr.run(["rm", wr.path("rm-me.txt")]))
    assert_objects(boto, wr.bucket, {wr.key("keep.txt"): b"keep",
                                     wr.key("keep-old.txt"): b"keep-old.txt" * 10},
                   context=res.describe() + res2.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_numpy_save(wr, boto, tmp_path):
    """numpy.save (one multipart, one small) and numpy.savez: the objects are byte-identical
    to the same saves on local disk (savez: same arrays, zip timestamps aside)."""
    import numpy as np
    script = textwrap.dedent(r"""
        import os, sys
        import numpy as np
        r = sys.argv[1]
        big = np.arange(1536 * 1024, dtype=np.float32).reshape(1536, 1024) * 0.5
        small = np.linspace(0, 1, 1000, dtype=np.float64)
        os.makedirs(os.path.join(r, "arrays"), exist_ok=True)
        np.save(os.path.join(r, "arrays/big.npy"), big)
        np.save(os.path.join(r, "arrays/small.npy"), small)
        np.savez(os.path.join(r, "arrays/both.npz"), big=big[:10], small=small)
        back = np.load(os.path.join(r, "arrays/big.npy"))
        print(bool((back == big).all()), back.shape)
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert res.stdout.decode().strip() == "True (1536, 1024)", res.describe()
    big = np.arange(1536 * 1024, dtype=np.float32).reshape(1536, 1024) * 0.5
    small = np.linspace(0, 1, 1000, dtype=np.float64)
    np.save(tmp_path / "big.npy", big)
    np.save(tmp_path / "small.npy", small)
    npz_key = wr.key("arrays/both.npz")
    npz_bytes = object_bytes(boto, wr.bucket, npz_key) if object_exists(
        boto, wr.bucket, npz_key) else b"<missing>"
    got = assert_objects(boto, wr.bucket, {
        wr.key("arrays/big.npy"): tmp_path / "big.npy",
        wr.key("arrays/small.npy"): tmp_path / "small.npy",
        npz_key: npz_bytes,
    }, context=res.describe())
    assert got[wr.key("arrays/big.npy")]["ETag"].endswith("-2"), got   # 6 MiB + header
    npz = np.load(io.BytesIO(npz_bytes))
    assert (npz["big"] == big[:10]).all() and (npz["small"] == small).all()
    assert_spool_clean(wr.spool, res.describe())


def test_mmap_writes(wr, boto):
    """create, ftruncate, mmap, write through the map, munmap, close (and numpy.memmap w+):
    the object holds what was written through the map."""
    n = 6 * MiB + 100
    script = textwrap.dedent(r"""
        import mmap, os, random, sys
        import numpy as np
        r, n = sys.argv[1], int(sys.argv[2])
        fd = os.open(os.path.join(r, "mm.bin"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fd, n)
        m = mmap.mmap(fd, n, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        m[0:5] = b"hello"
        m[1 << 20:2 << 20] = random.Random("mm").randbytes(1 << 20)
        m[n - 5:n] = b"world"
        m.flush()
        m.close()
        os.close(fd)
        a = np.memmap(os.path.join(r, "memmap.u8"), dtype=np.uint8, mode="w+", shape=(n,))
        a[:] = np.arange(n, dtype=np.uint64) % 251
        a.flush()
        del a
        print("ok")
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local, n]))
    data = bytearray(n)
    data[0:5] = b"hello"
    data[MiB:2 * MiB] = blob("mm", MiB)
    data[n - 5:n] = b"world"
    memmap = bytes(i % 251 for i in range(251)) * (n // 251) + bytes(range(n % 251))
    assert_objects(boto, wr.bucket, {wr.key("mm.bin"): bytes(data),
                                     wr.key("memmap.u8"): memmap}, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_tensorflow_style_stdio_writer(wr, boto, build):
    """fopen/fwrite/fflush/fsync/fclose and rename, the way TensorFlow's PosixWritableFile and
    checkpoint saver write (a C program: stdio's fclose closes without the close symbol)."""
    tool = build.require(build.root / "tests" / "wr_stdio")
    data = blob("tf-data", 6 * MiB + 5)
    index = blob("tf-index", 3000)
    ev1, ev2 = b"event-1\n" * 100, b"event-2\n" * 50
    ckpt = b'model_checkpoint_path: "model.ckpt-100"\n'
    steps = [
        (["wb", wr.path("tf/model.ckpt-100.data-00000-of-00001.tempstate123"), "-r",
          wr.path("tf/model.ckpt-100.data-00000-of-00001")], data),
        (["-s", "w", wr.path("tf/model.ckpt-100.index")], index),
        (["-d", "a", wr.path("tf/events.log")], ev1),
        (["-d", "-s", "a", wr.path("tf/events.log")], ev2),
        (["-c", "1", "w", wr.path("tf/checkpoint")], ckpt),
    ]
    # mkdir first, as TensorFlow's RecursivelyCreateDir does.
    expect_ok(wr.run(["mkdir", "-p", wr.path("tf/many")]))
    for args, payload in steps:
        # getopt wants options first: move "-r FINAL" in front.
        if "-r" in args:
            i = args.index("-r")
            args = args[i:i + 2] + args[:i] + args[i + 2:]
        res = expect_ok(wr.run([tool, *args], stdin_data=payload))
        assert res.stdout.decode().strip() == f"ok {len(payload)}", res.describe()
        expect_summary(res)
    # Many short-lived writers: whatever stdio still buffers is written by fclose itself,
    # so an upload queued before that write would see a short (empty) file now and then.
    loop = ('for i in $(seq 1 40); do printf "$2" | "$1" w "$3/f$i" > /dev/null || exit 1; '
            'done')
    res = expect_ok(wr.run(["sh", "-c", loop, "sh", tool, ckpt.decode(), wr.path("tf/many")],
                           timeout=120))
    expected = {
        wr.key("tf/model.ckpt-100.data-00000-of-00001"): data,
        wr.key("tf/model.ckpt-100.index"): index,
        wr.key("tf/events.log"): ev1 + ev2,
        wr.key("tf/checkpoint"): ckpt,
    }
    expected.update({wr.key(f"tf/many/f{i}"): ckpt for i in range(1, 41)})
    got = bucket_objects(boto, wr.bucket)
    short = sorted(k for k, v in got.items() if k in expected and
                   v["Size"] != len(expected[k]))
    assert not short, f"objects shorter than what fclose wrote: {short}"
    assert_objects(boto, wr.bucket, expected, context=res.describe())
    assert_spool_clean(wr.spool)


# -- read-after-write and fsync --------------------------------------------------------------


def test_read_after_write(wr, boto, scripts):
    """A process that wrote and closed files stats, lists and reads them back at once
    (uploads may still be pending) and 1.5 s later; so does the next process."""
    sizes = {"raw/small.txt": 10, "raw/three.bin": 3 * MiB, "raw/seven.bin": 7 * MiB + 1}
    res = expect_ok(wr.run(py(scripts / "raw.py", wr.local, "write")))
    got = json.loads(res.stdout)
    expected_look = {
        "names": sorted(os.path.basename(r) for r in sizes),
        "top": ["raw"],
        "files": {rel: [n, True, True, n, True, n] for rel, n in sizes.items()},
        "raw_is_dir": True,
    }
    assert got == {"immediate": expected_look, "later": expected_look}, res.describe()
    expect_summary(res, uploaded=3)
    assert_objects(boto, wr.bucket, {wr.key(rel): blob(rel, n) for rel, n in sizes.items()})
    res = expect_ok(wr.run(py(scripts / "raw.py", wr.local, "read")))
    assert json.loads(res.stdout) == {"immediate": expected_look}, res.describe()
    assert_spool_clean(wr.spool, res.describe())


def test_fsync_uploads_synchronously(wr, boto, scripts):
    """Nothing is uploaded before the last close or an fsync; right after fsync/fdatasync
    returns, boto3 sees the object; bytes written after the fsync arrive at close."""
    a, b = blob("a", 6 * MiB + 11), blob("b", 1000)
    child = wr.spawn(py(scripts / "sync.py", wr.local))
    child.expect("written")
    assert not object_exists(boto, wr.bucket, wr.key("sync/a.bin")), "uploaded before close"
    child.send()
    child.expect("synced")
    have = {k: object_sha(boto, wr.bucket, wr.key(k)) if object_exists(
        boto, wr.bucket, wr.key(k)) else None for k in ("sync/a.bin", "sync/b.txt")}
    assert have == {"sync/a.bin": _expected_digest(a), "sync/b.txt": _expected_digest(b)}, \
        f"after fsync: {have}\nstderr: {bytes(child.err)[-2000:]!r}"
    child.send()
    child.expect("closed")
    res = expect_ok(child.wait())
    assert_objects(boto, wr.bucket, {wr.key("sync/a.bin"): a + b"tail",
                                     wr.key("sync/b.txt"): b}, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_fsync_then_close_uploads_once(wr, boto):
    """A file fsync'd and then closed unchanged is uploaded once (by the fsync), not again at
    close; one changed right after its fsync (an in-place pwrite of the same size, within the
    same clock tick) is uploaded again with the new bytes."""
    script = textwrap.dedent(r"""
        import os, sys
        r = sys.argv[1]
        fd = os.open(os.path.join(r, "once.bin"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"a" * 100000)
        os.fsync(fd)
        os.close(fd)
        fd = os.open(os.path.join(r, "twice.bin"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"b" * 100000)
        os.fsync(fd)
        os.pwrite(fd, b"c", 500)
        os.close(fd)
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    expect_summary(res, uploaded=3)
    twice = bytearray(b"b" * 100000)
    twice[500] = ord("c")
    assert_objects(boto, wr.bucket, {wr.key("once.bin"): b"a" * 100000,
                                     wr.key("twice.bin"): bytes(twice)}, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_state_file_rewritten_quickly(make_wroute, bucket, boto):
    """A small state file rewritten with write-temp-then-rename forty times in a row, with no
    upload_delay (so replaced versions are queued or in flight at every moment): the object
    ends with the last version, and no temp key is left."""
    route = make_wroute(bucket, upload_delay="0")
    script = textwrap.dedent(r"""
        import os, sys, time
        r = sys.argv[1]
        for i in range(40):
            with open(os.path.join(r, f"state.tmp{i}"), "w") as f:
                f.write(f"version {i}\n" * (i + 1))
            os.replace(os.path.join(r, f"state.tmp{i}"), os.path.join(r, "state"))
            if i % 8 == 0:
                time.sleep(0.02)
    """)
    res = expect_ok(route.run([sys.executable, "-c", script, route.local]))
    assert_objects(boto, bucket, {route.key("state"): b"version 39\n" * 40},
                   context=res.describe())
    assert_spool_clean(route.spool, res.describe())


def test_upload_delay_spares_temp_names(make_wroute, bucket, boto):
    """With a long upload_delay a temp file renamed right after its close is only ever
    uploaded under its final name, and one removed right after its close is never uploaded
    (the only PUT in the debug log is the final name's), and exit does not wait the delay
    out."""
    route = make_wroute(bucket, upload_delay="20s")
    script = textwrap.dedent(r"""
        import os, sys
        r = sys.argv[1]
        with open(os.path.join(r, "model.tmp"), "wb") as f:
            f.write(b"m" * 300000)
        os.rename(os.path.join(r, "model.tmp"), os.path.join(r, "model"))
        with open(os.path.join(r, "scratch"), "wb") as f:
            f.write(b"s" * 1000)
        os.remove(os.path.join(r, "scratch"))
    """)
    res = expect_ok(route.run([sys.executable, "-c", script, route.local], log="debug"))
    assert res.elapsed < 15, f"exit waited for upload_delay\n{res.describe()}"
    puts = re.findall(r"debug: agent: PUT (\S+)", route.agent_log())
    assert puts == [route.key("model")], route.agent_log()
    assert_objects(boto, bucket, {route.key("model"): b"m" * 300000}, context=res.describe())
    assert_spool_clean(route.spool, res.describe())


def test_objects_in_the_store_are_placeholders(wr, boto, mc):
    """An object already in the store when the tree's agent starts shows in the tree as a
    placeholder: through rwsplit it stats as the object and is downloaded once, on first
    open (TensorFlow's restore opens a file several times); without rwsplit its content is
    a note naming the object, never zeros."""
    key = wr.key("ckpt-1.data")
    data = blob("v1", 200000)
    mc.put_bytes(f"{wr.bucket}/{key}", data)
    script = textwrap.dedent(r"""
        import hashlib, os, sys
        path = sys.argv[1] + "/ckpt-1.data"
        print("size", os.stat(path).st_size, flush=True)
        def digest():
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        print("read", digest(), digest(), digest(), flush=True)
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local], log="debug"))
    lines = res.stdout.decode().split("\n")
    assert lines[0] == f"size {len(data)}", res.describe()
    assert lines[1].split()[1:] == [hashlib.sha256(data).hexdigest()] * 3, res.describe()
    gets = re.findall(r"debug: agent: GET (\S+)", wr.agent_log())
    assert gets == [key], wr.agent_log()
    # Downloaded: a plain file now, for programs without rwsplit too.
    assert (Path(wr.local) / "ckpt-1.data").read_bytes() == data
    assert bucket_objects(boto, wr.bucket).keys() == {key}

def _kill_after_close(route, store, scripts, big_src, kill_agent=False):
    """Writes big_src to route/big with the store paused, closes (which must return at once),
    SIGKILLs the process (and, with kill_agent, the tree's agent: a node restart), resumes the
    store. Returns the killed process's Result."""
    child = route.spawn(py(scripts / "hold.py", json.dumps([[route.path("big"), str(big_src)]]),
                           "sleep"))
    child.expect("written")
    store.server.pause()
    try:
        child.send()
        line = child.expect("closed", timeout=20)
        assert float(line.split()[1]) < 5, f"close blocked on the paused store: {line}"
        time.sleep(1.0)          # let the upload start (and hang)
        child.kill(signal.SIGKILL)
        res = child.wait(timeout=20)
        if kill_agent:
            route.kill_agents()
    finally:
        store.server.resume()
    assert res.returncode == -signal.SIGKILL, res.describe()
    assert sha256_file(Path(route.path("big"))) == sha256_file(big_src)
    return res


def test_sigkill_before_upload_then_recover(make_wroute, own_store, scripts, big_src):
    """The writer and the tree's agent SIGKILLed after close, before the upload (a node
    restart): `rwsplit recover` uploads what the tree holds, aborts the multipart upload the
    agent left, and exits 0; a second one has nothing to do."""
    route = make_wroute(own_store.bucket, server=own_store.server)
    _kill_after_close(route, own_store, scripts, big_src, kill_agent=True)
    res = route.recover()
    assert res.returncode == 0, res.describe()
    assert_objects(own_store.boto, own_store.bucket, {route.key("big"): big_src},
                   context=res.describe())
    res = route.recover()
    assert res.returncode == 0, res.describe()


def test_sigkill_before_upload_agent_uploads(make_wroute, own_store, scripts, big_src):
    """The writer SIGKILLed after close, before the upload: the tree's agent outlives it and
    uploads the file once the store answers again; the next process writes as usual."""
    route = make_wroute(own_store.bucket, server=own_store.server)
    _kill_after_close(route, own_store, scripts, big_src)
    res = expect_ok(route.run(["sh", "-c", 'echo next > "$1"', "sh", route.path("next.txt")]))
    expected = {route.key("big"): big_src, route.key("next.txt"): b"next\n"}
    wait_for_keys(own_store.boto, own_store.bucket, expected)
    assert_objects(own_store.boto, own_store.bucket, expected, context=res.describe())


def test_store_restarted_within_retry_window(make_wroute, own_store, scripts, big_src):
    """MinIO hangs during the upload, is killed and comes back within the retry window:
    the objects land and the process exits 0."""
    route = make_wroute(own_store.bucket, server=own_store.server,
                        store={"retry_time": "30s"})
    small = Path(route.spool).parent / f"small-{secrets.token_hex(3)}.txt"
    small.write_bytes(b"small\n" * 100)
    child = route.spawn(py(scripts / "hold.py", json.dumps(
        [[route.path("big"), str(big_src)], [route.path("small.txt"), str(small)]]), "exit"))
    child.expect("written")
    own_store.server.pause()
    child.send()
    line = child.expect("closed", timeout=20)
    assert float(line.split()[1]) < 5, f"close blocked on the paused store: {line}"
    time.sleep(1.0)
    own_store.server.restart(down_for=2.0)       # SIGKILL the hung server, start it again
    res = child.wait(timeout=60)
    assert res.returncode == 0, res.describe()
    assert_objects(own_store.boto, own_store.bucket,
                   {route.key("big"): big_src, route.key("small.txt"): small},
                   multipart_clean=False, context=res.describe())
    assert_spool_clean(route.spool, res.describe())
    assert uploaded_counts(res) == [2], res.describe()


def test_store_down_longer_than_retry_time(make_wroute, own_store, scripts, big_src):
    """MinIO stopped for longer than retry_time (3 s): the process still exits within
    drain_timeout (+ a few seconds) and warns naming the route; the data stays in the tree,
    and once MinIO is back the agent uploads it (`rwsplit recover` waits for that)."""
    route = make_wroute(own_store.bucket, server=own_store.server, store={"retry_time": "3s"})
    small = Path(route.spool).parent / f"small-{secrets.token_hex(3)}.txt"
    small.write_bytes(b"pending small\n" * 10)
    child = route.spawn(py(scripts / "hold.py", json.dumps(
        [[route.path("big-pending.bin"), str(big_src)],
         [route.path("small-pending.txt"), str(small)]]), "exit"))
    child.expect("written")
    own_store.server.stop(keep_data=True, hard=True)
    t0 = time.monotonic()
    child.send()
    line = child.expect("closed", timeout=20)
    assert float(line.split()[1]) < 5, f"close blocked on the stopped store: {line}"
    res = child.wait(timeout=DRAIN_TIMEOUT + 30)
    took = time.monotonic() - t0
    assert took < DRAIN_TIMEOUT + 8, f"exit took {took:.1f} s\n{res.describe()}"
    problems = b"\n".join(res.rwsplit_problems())
    assert route.local.encode() in problems and b"2 files not yet" in problems, res.describe()
    assert sha256_file(Path(route.path("big-pending.bin"))) == sha256_file(big_src)
    assert sha256_file(Path(route.path("small-pending.txt"))) == sha256_file(small)

    own_store.server.start()
    rec = route.recover()
    assert rec.returncode == 0, rec.describe()
    assert_objects(own_store.boto, own_store.bucket,
                   {route.key("big-pending.bin"): big_src,
                    route.key("small-pending.txt"): small},
                   multipart_clean=False, context=rec.describe())
    assert_spool_clean(route.spool, rec.describe())


# -- processes -------------------------------------------------------------------------------


PROC_SIZES = [0, 1, 1000, 300 * KiB, 6 * MiB + 7]


def _pool_objects(route):
    out = {}
    for i in range(8):
        for j in range(3):
            rel = f"pool/w{i}-{j}.bin"
            out[route.key(rel)] = blob(rel, PROC_SIZES[(i + j) % len(PROC_SIZES)])
    return out


def _one_version_each(boto, bucket):
    """{key: n} of the keys with other than exactly one version (delete markers count)."""
    versions = {}
    for page in boto.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            versions[v["Key"]] = versions.get(v["Key"], 0) + 1
    return {k: n for k, n in versions.items() if n != 1}


def test_fork_workers_and_subprocess(wr, boto, mc, scripts):
    """multiprocessing (fork) Pool (closed and joined) and Process workers each writing their
    own files, a file opened by the parent and written and closed by a child through the
    inherited fd, a subprocess and a shell: every object exists once (versioned bucket: one
    version each) with its content, after the parent exited."""
    mc.run("version", "enable", mc.target(wr.bucket))
    res = wr.run(py(scripts / "procs.py", wr.local, "graceful"), timeout=120)
    assert res.returncode == 0, res.describe()
    expected = {wr.key("shared.log"): b"parent-1;child;parent-2;parent-3;",
                wr.key("sub/child.txt"): b"from subprocess" * 999,
                wr.key("sub/sh.txt"): b"hello from sh\n"}
    expected.update(_pool_objects(wr))
    for i in range(4):
        rel = f"proc/p{i}.bin"
        expected[wr.key(rel)] = blob(rel, PROC_SIZES[(i + 2) % len(PROC_SIZES)])
    assert_objects(boto, wr.bucket, expected, context=res.describe())
    assert _one_version_each(boto, wr.bucket) == {}, "uploaded more than once"
    assert not res.rwsplit_problems(), res.describe()
    parent = json.loads(res.stdout)["parent"]
    assert parent in [pid for pid, _ in res.summaries()], res.describe()
    assert len(res.summaries()) >= 3, res.describe()   # parent, python child, sh
    assert_spool_clean(wr.spool, res.describe())


def test_pool_terminated_workers_uploads_complete(wr, boto, mc, scripts):
    """`with Pool() as p: p.map(...)` terminates its workers (SIGTERM) once map returned, so
    files they closed may still be waiting for upload: like any process that dies, they stay
    in the spool with their journal, and `rwsplit recover` (or the next process on the spool)
    uploads every one of them, with the right content, and empties the spool."""
    mc.run("version", "enable", mc.target(wr.bucket))
    res = wr.run(py(scripts / "procs.py", wr.local, "terminate"), timeout=120)
    assert res.returncode == 0, res.describe()
    rec = wr.recover()
    assert rec.returncode == 0, rec.describe()
    assert_objects(boto, wr.bucket, _pool_objects(wr), multipart_clean=False,
                   context=res.describe() + rec.describe())
    assert_spool_clean(wr.spool, res.describe())
    # A worker killed after the store committed a PUT (or a CompleteMultipartUpload, or a
    # CreateMultipartUpload) but before it journaled the answer leaves a second version (or an
    # upload nobody knows the id of) once recover uploads the file again. Avoiding that takes
    # more than the journal (HEAD + ETag compare, ListMultipartUploads for the key): reported,
    # not failed.
    twice, orphans = _one_version_each(boto, wr.bucket), pending_multipart(boto, wr.bucket)
    if twice or orphans:
        warnings.warn(f"after SIGTERM'd workers + recover: uploaded more than once {twice}; "
                      f"incomplete multipart uploads {orphans}")


# -- errors ----------------------------------------------------------------------------------


def test_errors_errno(make_wroute, bucket, boto, scripts, tmp_path):
    """Key > 1024 bytes: ENAMETOOLONG at open (1024 works); read of a missing key: ENOENT;
    rename to another write route or between a route and a local path moves the file, and
    the objects follow."""
    wr = make_wroute(bucket, routes={"ckpt": "ckpt/", "logs": "logs/"})
    local = tmp_path / "local"
    local.mkdir()
    res = expect_ok(wr.run(py(scripts / "errors.py", wr.path(), wr.path(route="logs"), local,
                              "ckpt/")))
    got = json.loads(res.stdout)
    expected = {
        "open_w_key_1024": "OK", "open_w_key_1025": "ENAMETOOLONG",
        "os_open_creat_key_1025": "ENAMETOOLONG",
        "open_r_missing": "ENOENT", "os_open_r_missing": "ENOENT", "stat_missing": "ENOENT",
        "open_r_missing_dir": "ENOENT",
        # The trees are real directories: renames between them and local paths are the
        # kernel's, and each agent mirrors its side.
        "rename_to_other_route": "OK", "rename_to_local": "ENOENT",
        "rename_from_local": "OK", "replace_to_other_route": "ENOENT",
        "a_size_after": "ENOENT", "local_a_exists": False, "logs_a_exists": True,
    }
    assert {k: got.get(k) for k in expected} == expected, res.describe()
    long_rel = [k for k in bucket_objects(boto, bucket) if len(k) == 1024]
    assert len(long_rel) == 1, bucket_objects(boto, bucket).keys()
    assert_objects(boto, bucket, {long_rel[0]: b"x", "logs/a.bin": b"A" * 1000,
                                  "ckpt/l.bin": b"L" * 10}, context=res.describe())


def test_mv_falls_back_to_copy(make_wroute, bucket, boto, tmp_path):
    """mv gets EXDEV from rename and copies: route -> local, local -> route, route -> another
    route all work, and the source is gone afterwards."""
    wr = make_wroute(bucket, routes={"ckpt": "ckpt/", "logs": "logs/"})
    local = tmp_path / "local"
    local.mkdir()
    (local / "in.bin").write_bytes(b"from local" * 100)
    script = textwrap.dedent(r"""
        import sys
        for name, data in (("out.bin", b"to local" * 100), ("across.bin", b"across" * 100)):
            with open(sys.argv[1] + "/" + name, "wb") as f:
                f.write(data)
    """)
    expect_ok(wr.run([sys.executable, "-c", script, wr.path()]))
    failed = []
    for args in (["mv", wr.path("out.bin"), local / "out.bin"],
                 ["mv", local / "in.bin", wr.path("in.bin")],
                 ["mv", wr.path("across.bin"), wr.path("across.bin", route="logs")]):
        res = wr.run(args)
        if res.returncode != 0 or res.rwsplit_problems():
            failed.append(res.describe())
    assert not failed, "\n".join(failed)
    assert (local / "out.bin").read_bytes() == b"to local" * 100
    assert not (local / "in.bin").exists()
    assert_objects(boto, bucket, {"ckpt/in.bin": b"from local" * 100,
                                  "logs/across.bin": b"across" * 100}, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_wrong_credentials_keep_data_in_spool(wr, boto, minio):
    """With a wrong secret the writes still succeed locally, fsync fails with EIO, the process
    exits within drain_timeout with an error line naming the route, the data stays in the
    tree (the secret is never printed), and once that agent is gone `rwsplit recover` with
    the right credentials uploads it."""
    secret = "wrong-secret-" + secrets.token_hex(8)
    script = textwrap.dedent(r"""
        import errno, json, os, sys
        r = sys.argv[1]
        out = {}
        with open(os.path.join(r, "a.bin"), "wb") as f:
            f.write(b"a" * 100000)
        out["a"] = "OK"
        f = open(os.path.join(r, "b.bin"), "wb")
        f.write(b"b" * 5000)
        f.flush()
        try:
            os.fsync(f.fileno())
            out["fsync"] = "OK"
        except OSError as e:
            out["fsync"] = errno.errorcode[e.errno]
        f.close()
        print(json.dumps(out))
    """)
    res = wr.run([sys.executable, "-c", script, wr.local],
                 extra_env={"AWS_SECRET_ACCESS_KEY": secret}, timeout=DRAIN_TIMEOUT + 30)
    assert json.loads(res.stdout or b"{}") == {"a": "OK", "fsync": "EIO"}, res.describe()
    assert res.elapsed < DRAIN_TIMEOUT + 8, res.describe()
    problems = res.rwsplit_problems()
    names_route = [line for line in problems
                   if wr.local.encode() in line or f"s3://{wr.bucket}/ckpt".encode() in line]
    assert names_route, f"no error line naming the route\n{res.describe()}"
    assert any(re.search(rb"(?i)denied|403|forbidden|credential|signature|EACCES", line)
               for line in problems), res.describe()
    assert secret.encode() not in res.stderr
    assert bucket_objects(boto, wr.bucket) == {}
    assert secret not in wr.agent_log()
    wr.kill_agents()  # it holds the wrong credentials
    rec = wr.recover()
    assert rec.returncode == 0, rec.describe()
    assert_objects(boto, wr.bucket, {wr.key("a.bin"): b"a" * 100000,
                                     wr.key("b.bin"): b"b" * 5000}, context=rec.describe())
    assert_spool_clean(wr.spool, rec.describe())


# -- spool and summary -----------------------------------------------------------------------


def test_spool_directory_created_on_demand(make_wroute, bucket, boto, tmp_path):
    """A spool directory that does not exist yet (nested) is created by the first writer."""
    spool = tmp_path / f"spool-new-{secrets.token_hex(3)}" / "a" / "b"
    wr = make_wroute(bucket, spool=spool, create_spool=False)
    res = expect_ok(wr.run(["sh", "-c", 'echo hi > "$1"', "sh", wr.path("hi.txt")]))
    assert_objects(boto, bucket, {wr.key("hi.txt"): b"hi\n"}, context=res.describe())
    assert spool.is_dir()
    assert_spool_clean(spool, res.describe())


def test_write_summary_line(wr, boto):
    """RWSPLIT_LOG=info: a process that wrote prints one `write summary:` line counting its
    uploads; RWSPLIT_LOG=warn prints nothing on a clean run."""
    script = ("import sys\n"
              "for i in range(3):\n"
              "    open(f'{sys.argv[1]}/s{i}.txt', 'w').write('x' * (i * 1000 + 1))\n")
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    expect_summary(res, uploaded=3)
    [(pid, text)] = res.summaries()
    assert pid == int(re.search(rb"rwsplit\[(\d+)\]", res.stderr).group(1))
    assert re.search(rb"\b3003\b", text), f"bytes (3003) not in the summary: {text!r}"
    quiet = wr.run([sys.executable, "-c", script, wr.local], log="warn")
    assert quiet.returncode == 0 and quiet.stderr == b"", quiet.describe()
    assert_objects(boto, wr.bucket, {wr.key(f"s{i}.txt"): b"x" * (i * 1000 + 1)
                                     for i in range(3)})


def test_threads_write_many_files(wr, boto):
    """Eight threads each writing and renaming twenty files at once: every object lands with
    its own bytes, once, and the spool is left clean."""
    script = textwrap.dedent(r"""
        import os, random, sys, threading
        root = sys.argv[1]
        def writer(t):
            for i in range(20):
                data = random.Random(f"{t}-{i}").randbytes(1000 + 97 * i)
                tmp = os.path.join(root, f"t{t}", f"f{i}.tmp")
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                os.rename(tmp, tmp[:-4])
        threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local], timeout=120))
    expected = {wr.key(f"t{t}/f{i}"): random.Random(f"{t}-{i}").randbytes(1000 + 97 * i)
                for t in range(8) for i in range(20)}
    assert_objects(boto, wr.bucket, expected, context=res.describe())
    assert_spool_clean(wr.spool, res.describe())


def test_stdio_modes_over_placeholders(wr, boto):
    """fopen() through libc (ctypes, as C and C++ programs call it) on objects that are only
    placeholders in the tree: "w" replaces the object ("0123456789" rewritten with "ab" is
    "ab"), "a" appends to it, "r+" of a missing name is ENOENT and "wx" of an existing one
    EEXIST, as on local disk."""
    boto.put_object(Bucket=wr.bucket, Key=wr.key("w.txt"), Body=b"0123456789")
    boto.put_object(Bucket=wr.bucket, Key=wr.key("a.txt"), Body=b"0123456789")
    script = textwrap.dedent(r"""
        import ctypes, json, os, sys
        libc = ctypes.CDLL(None, use_errno=True)  # the global fopen: rwsplit's
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        r, out = sys.argv[1], {}
        def fopen(name, mode, text=None):
            f = libc.fopen(os.path.join(r, name).encode(), mode.encode())
            if not f:
                return os.strerror(ctypes.get_errno())
            if text:
                libc.fputs(text.encode(), f)
            libc.fclose(f)
            return "OK"
        out["w"] = fopen("w.txt", "w", "ab")
        out["a"] = fopen("a.txt", "a", "ab")
        out["r+missing"] = fopen("missing.txt", "r+")
        out["wx"] = fopen("w.txt", "wx", "zz")
        print(json.dumps(out))
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert json.loads(res.stdout) == {"w": "OK", "a": "OK",
                                      "r+missing": os.strerror(2), "wx": os.strerror(17)}
    assert_objects(boto, wr.bucket, {wr.key("w.txt"): b"ab", wr.key("a.txt"): b"0123456789ab"},
                   context=res.describe())


def test_spool_budget_honoured_under_ten_times_the_volume(make_wroute, bucket, boto):
    """spool_budget = 1MiB and 10 MiB written (40 files of 256 KiB): every file lands, the
    uploaded files beyond the budget become placeholders again (least recently used first),
    so the tree keeps at most the budget (plus one file) of data, and a file evicted is
    read back whole through rwsplit, downloaded again."""
    route = make_wroute(bucket, spool_budget="1MiB")
    files = {f"b/f{i:02d}.bin": blob(f"budget{i}", 256 * KiB) for i in range(40)}
    script = textwrap.dedent(r"""
        import os, random, sys
        r = sys.argv[1]
        os.makedirs(os.path.join(r, "b"), exist_ok=True)
        for i in range(40):
            with open(os.path.join(r, "b", "f%02d.bin" % i), "wb") as f:
                f.write(random.Random("budget%d" % i).randbytes(256 << 10))
    """)
    res = expect_ok(route.run([sys.executable, "-c", script, route.local]))
    assert_objects(boto, bucket, {route.key(k): v for k, v in files.items()},
                   context=res.describe())
    local = sum(p.stat().st_size for p in Path(route.local).rglob("*.bin")
                if p.stat().st_mode & 0o777)  # placeholders have no permission bits
    assert local <= (1 << 20) + 256 * KiB, f"{local} bytes kept locally\n{res.describe()}"
    evicted = [p for p in Path(route.local).rglob("*.bin") if not p.stat().st_mode & 0o777]
    assert len(evicted) >= 35, evicted
    name = evicted[0].relative_to(route.local).as_posix()
    back = expect_ok(route.run(["cat", route.path(name)]))
    assert back.stdout == files[name], back.describe()


def test_failed_exec_in_a_vfork_child_changes_nothing(wr, boto):
    """Python's subprocess runs a missing program (nvidia-smi on a CPU node) in a vfork
    child whose exec fails and which _exits in the parent's memory: the parent's writes
    before and after, and its exit's wait for them, are unaffected."""
    script = textwrap.dedent(r"""
        import os, subprocess, sys
        r = sys.argv[1]
        open(os.path.join(r, "before.txt"), "w").write("before")
        for _ in range(3):
            try:
                subprocess.run(["/nonexistent/nvidia-smi"], cwd=r)
            except FileNotFoundError:
                pass
        open(os.path.join(r, "after.txt"), "w").write("after")
    """)
    res = expect_ok(wr.run([sys.executable, "-c", script, wr.local]))
    assert_objects(boto, wr.bucket, {wr.key("before.txt"): b"before",
                                     wr.key("after.txt"): b"after"}, context=res.describe())
