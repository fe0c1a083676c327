"""Write routes as a real local tree (issue 14), end to end.

A write route `[write /mnt/rwsplit-wt-<tag>/out]` with `url = s3://BUCKET/out/` is a real local
directory shared by every process of the node; a tree agent (`rwsplit agent ... --tree PATH`)
watches it and uploads: every regular file closed after writing becomes the object
out/<relative path>, renames are mirrored, unlinks delete, empty directories and symlinks
are not stored. A preloaded process's normal exit waits until the store is up to date; where
no normal exit happens (SIGKILL, exec as the last command, a static binary) the object
appears asynchronously and the tests poll (bounded) for it.

Every test runs the same programs twice: against a plain local directory without rwsplit
(the reference) and against the route with rwsplit preloaded. Then
  - the route tree holds the same names (files, directories, symlinks) with the same bytes,
  - the bucket, read with boto3, holds exactly one object per regular file of the tree with
    the same bytes (so a temporary key, a lock file, a -journal or a directory marker left
    behind fails the test) and no incomplete multipart upload.

Each test has its own route path (/mnt/rwsplit-wt-<tag>/out, absent beforehand), spool and
cache directory; the teardown kills the tree agent (found with pgrep) and removes all three.

Run from the repository root (own build dir, so as not to race other builds):
    make BUILD=/tmp/build-wt all /tmp/build-wt/tests/wr_static   # or: make integration
    RWSPLIT_BUILD=/tmp/build-wt .tools/venv/bin/python -m pytest -q \
        tests/integration/test_write_tree.py

Needs rsync, git and the sqlite3 CLI on PATH and the Python packages numpy and safetensors.

Every preloaded program runs with RWSPLIT_AGENT_LOG=debug, so the tree agent it starts logs
at debug into SPOOL/u<uid>/<id>/agent.log; a failure message ends with the last lines of
every such log of the route.
"""

import io
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from tests.harness import proc
from tests.harness.checks import object_sha, sha256_bytes, sha256_file
from tests.harness.minio import Mc, random_bucket_name
from tests.harness.proc import LOCALE, expect_ok
from tests.harness.s3faults import S3Faults
from tests.harness.toxiproxy import Toxiproxy

KiB = 1 << 10
MiB = 1 << 20

PREFIX = "out/"
ROUTE_DEFAULTS = {
    "multipart_threshold": "5MiB",
    "part_size": "5MiB",
    "drain_timeout": "20s",
}
RUN_TIMEOUT = 25          # one program; every test stays well under 30 s when it passes
POLL_TIMEOUT = 20.0       # an object that appears asynchronously
POLL_STEP = 0.1
AGENT_LOG_TAIL = 200      # lines of each agent.log in a failure message

# Copied, extracted and synced into the route: nested dirs, 0 and 1 byte files, awkward
# names, one multipart file (above 5 MiB), plus a symlink and empty directories (which the
# tree holds and the bucket does not).
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
TREE_LINKS = {"sub/link-to-a": "../a.txt"}
TREE_EMPTY_DIRS = ["emptydir", "sub/deep/empty"]

AWKWARD = {
    "sp ace.txt": 10,
    "ünï 文件.txt": 300,
    "pct%41.bin": 41,
    "plus+eq=.bin": 42,
    "dir with space/ñ+%=.dat": 2000,
    "dir with space/inner dir/ü ü.bin": 70 * KiB,
    "dir with space/big part.bin": 5 * MiB + 1,
    "a/b/c/deep=1+2%3.bin": 9,
}


# -- helpers ---------------------------------------------------------------------------------


def blob(seed, n):
    """n deterministic pseudo-random bytes (the scripts compute the same)."""
    return random.Random(seed).randbytes(n)


def static_pattern(n):
    """What tests/static/wr_static writes: byte i is (i*131 + (i>>12)*7 + 13) & 0xff."""
    import numpy as np
    i = np.arange(n, dtype=np.uint64)
    return ((i * 131 + (i >> 12) * 7 + 13) & 0xFF).astype(np.uint8).tobytes()


def make_tree(root, files, links=None, empty_dirs=()):
    root = Path(root)
    for rel, n in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob(rel, n))
    for rel, target in (links or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / rel)
    for rel in empty_dirs:
        (root / rel).mkdir(parents=True, exist_ok=True)
    return root


def tree_state(root):
    """rel -> ("dir",) | ("link", target) | ("file", size, sha256) | ("other",), read
    natively (not through rwsplit)."""
    root = str(root)
    out = {}
    for dp, dns, fns in os.walk(root):
        for name in dns + fns:
            p = os.path.join(dp, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", st.st_size, sha256_file(p))
            else:
                out[rel] = ("other",)
    return out


def regular_files(root):
    """rel -> Path of the regular files under root (symlinks excluded)."""
    return {rel: Path(root) / rel for rel, st in tree_state(root).items() if st[0] == "file"}


def assert_same_tree(route_root, local_root, rename=None, content_differs=(), context=""):
    """Same names, types, link targets and (but for content_differs) bytes. rename maps a
    name of the route tree to the local one (random temp-file names)."""
    got = tree_state(route_root)
    want = tree_state(local_root)
    for old, new in (rename or {}).items():
        got = {rel.replace(old, new): v for rel, v in got.items()}
    assert sorted(got) == sorted(want), (
        f"names differ between {route_root} and {local_root}\n"
        f"  only in the route: {sorted(set(got) - set(want))}\n"
        f"  only local: {sorted(set(want) - set(got))}\n{context}")
    for rel in want:
        g, w = got[rel], want[rel]
        if rel in content_differs and g[0] == w[0] == "file":
            continue
        assert g == w, f"{rel}: route {g}, local {w}\n{context}"


def expected_objects(wt, sub=""):
    """key -> Path: one object per regular file of the route tree (or of OUT/sub)."""
    root = Path(wt.path(sub)) if sub else Path(wt.out)
    base = f"{sub.rstrip('/')}/" if sub else ""
    return {wt.key(base + rel): p for rel, p in regular_files(root).items()}


def bucket_objects(boto, bucket):
    """key -> Size of everything in the bucket."""
    out = {}
    for page in boto.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["Size"]
    return out


def object_bytes(boto, bucket, key):
    return boto.get_object(Bucket=bucket, Key=key)["Body"].read()


def pending_multipart(boto, bucket):
    resp = boto.list_multipart_uploads(Bucket=bucket)
    return [(u["Key"], u["UploadId"]) for u in resp.get("Uploads", [])]


def _digest(value):
    if isinstance(value, (bytes, bytearray)):
        return len(value), sha256_bytes(value)
    return os.path.getsize(value), sha256_file(value)


def bucket_mismatch(boto, bucket, expected):
    """None if the bucket holds exactly expected (key -> bytes | Path) with those bytes and
    no incomplete multipart upload, else what differs."""
    got = bucket_objects(boto, bucket)
    if sorted(got) != sorted(expected):
        return (f"keys differ\n  missing: {sorted(set(expected) - set(got))}\n"
                f"  unexpected: {sorted(set(got) - set(expected))}")
    for key, value in expected.items():
        want = _digest(value)
        if got[key] != want[0]:
            return f"size of {key}: {got[key]}, expected {want[0]}"
        have = object_sha(boto, bucket, key)
        if have != want:
            return f"content of {key}: (size, sha256) {have}, expected {want}"
    pending = pending_multipart(boto, bucket)
    if pending:
        return f"incomplete multipart uploads: {pending}"
    return None


def assert_bucket(wt, expected, context=""):
    """Right now (after a preloaded program's normal exit) the bucket is exactly expected."""
    problem = bucket_mismatch(wt.boto, wt.bucket, expected)
    assert problem is None, f"bucket {wt.bucket}: {problem}\n{context}{wt.diagnostics()}"


def wait_bucket(wt, expected, timeout=POLL_TIMEOUT, context=""):
    """Polls (bounded) until the bucket is exactly expected."""
    deadline = time.monotonic() + timeout
    problem = "not checked"
    while True:
        problem = bucket_mismatch(wt.boto, wt.bucket, expected)
        if problem is None:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_STEP)
    raise AssertionError(f"bucket {wt.bucket} after {timeout} s: {problem}\n{context}"
                         f"{wt.diagnostics()}")


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(POLL_STEP)


def ok(res):
    """Exit 0 and, for a preloaded program, no rwsplit warning or error."""
    return expect_ok(res)


# -- running programs: the route (preloaded) and the local reference (not) ---------------------


class Child:
    """A program driven step by step: it prints a word per step on stdout; send() writes a
    line to its stdin."""

    def __init__(self, args, env):
        self.args = [str(a) for a in args]
        self.start = time.monotonic()
        self.proc = subprocess.Popen(self.args, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)

    def expect(self, word, timeout=RUN_TIMEOUT):
        """The next stdout line, which must start with word (bounded by timeout)."""
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                self.kill()
                raise AssertionError(f"no {word!r} from {self.args!r} in {timeout} s\n"
                                     f"{self._stderr()}")
        finally:
            sel.close()
        line = self.proc.stdout.readline()
        assert line.startswith(word.encode()), (
            f"expected {word!r}, got {line!r} from {self.args!r}; exit {self.proc.poll()}\n"
            f"{self._stderr()}")
        return line.decode().strip()

    def _stderr(self):
        if self.proc.poll() is None:
            return "(still running)"
        return "stderr: " + self.proc.stderr.read()[-3000:].decode(errors="replace")

    def send(self, text="go"):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def killed(self):
        """SIGKILL, then reap (the kernel has closed its files when this returns)."""
        self.kill()
        self.proc.wait(timeout=10)

    def wait(self, timeout=RUN_TIMEOUT):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"{self.args!r} still running after {timeout} s (killed)\n"
                                 f"stderr: {err[-3000:]!r}")
        return proc.Result(self.args, self.proc.returncode, out, err,
                           time.monotonic() - self.start)


class Side:
    """Where a scenario runs: out (the directory), path(rel), run(), spawn()."""

    def __init__(self, out):
        self.out = str(out)
        self.children = []

    def path(self, rel=""):
        return f"{self.out}/{rel}" if rel else self.out

    def env(self, extra=None):
        raise NotImplementedError

    def run(self, args, timeout=RUN_TIMEOUT, stdin_data=None, extra_env=None):
        return proc.run(args, self.env(extra_env), timeout, stdin_data)

    def spawn(self, args, extra_env=None):
        child = Child(args, self.env(extra_env))
        self.children.append(child)
        return child

    def kill_children(self):
        for child in self.children:
            child.kill()
            try:
                child.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class Local(Side):
    """The reference: a plain directory, programs run without rwsplit."""

    def __init__(self, out, server, home):
        super().__init__(out)
        Path(out).mkdir(parents=True, exist_ok=True)
        self.server = server
        self.home = home

    def env(self, extra=None):
        env = self.server.child_env({"LC_ALL": LOCALE, "PYTHONDONTWRITEBYTECODE": "1",
                                     "HOME": self.home})
        for key in ("LD_PRELOAD", "RWSPLIT_CONFIG"):
            env.pop(key, None)
        env.update(extra or {})
        return env


class WTree(Side):
    """One write route: OUT = /mnt/rwsplit-wt-<tag>/out -> s3://bucket/out/."""

    def __init__(self, server, boto, build, bucket, base, conf, spool, cache_dir, home):
        super().__init__(f"{base}/out")
        self.server = server
        self.boto = boto
        self.build = build
        self.bucket = bucket
        self.base = base
        self.conf = conf
        self.spool = spool
        self.cache_dir = cache_dir
        self.home = home

    def key(self, rel):
        return PREFIX + rel

    def env(self, extra=None):
        """Preloaded; RWSPLIT_AGENT_LOG=debug: the tree agent it may start logs at debug."""
        env = proc.preload_env(self.server, self.build.lib, self.conf, "info",
                               {"HOME": self.home, "RWSPLIT_AGENT_LOG": "debug"})
        env.update(extra or {})
        return env

    def recover(self, timeout=RUN_TIMEOUT):
        """`rwsplit recover -c CONF` (not preloaded)."""
        env = self.server.child_env({"RWSPLIT_LOG": "info", "LC_ALL": LOCALE})
        env.pop("LD_PRELOAD", None)
        env.pop("RWSPLIT_CONFIG", None)
        return proc.run([self.build.require(self.build.rwsplit), "recover", "-c", self.conf],
                        env, timeout)

    def agents(self):
        """pids of the tree agents of this route (`rwsplit agent ... --tree OUT`)."""
        return proc.tree_agents(self.out)

    def kill_agents(self):
        """SIGKILL every agent of the tree and wait (bounded) until they are gone."""
        return proc.kill_tree_agents(self.out)

    def agent_logs(self):
        """The agent.log files of this route's spool (SPOOL/u<uid>/<id>/agent.log)."""
        return sorted(Path(self.spool).glob("u*/*/agent.log"))

    def diagnostics(self):
        """For a failure message: the route's tree agents and the last AGENT_LOG_TAIL lines
        of each of its agent.log files."""
        try:
            agents = self.agents()
        except Exception as e:  # noqa: BLE001
            agents = repr(e)
        out = [f"\n(tree agents of {self.out}: {agents})"]
        logs = self.agent_logs()
        if not logs:
            out.append(f"(no agent.log under {self.spool})")
        for log in logs:
            try:
                lines = log.read_text(errors="replace").splitlines()
            except OSError as e:
                out.append(f"({log}: {e})")
                continue
            tail = lines[-AGENT_LOG_TAIL:]
            out.append(f"--- {log}: last {len(tail)} of {len(lines)} lines ---")
            out.extend(tail)
        return "\n".join(out)


@pytest.fixture
def make_wtree(minio, boto, build, tmp_path):
    """make_wtree(bucket, server=None, boto=None, endpoint=None, store=None, **route_options)
    -> WTree with its own route path, spool and cache dir (endpoint: the store's address in
    the config, e.g. a fault injector in front of server; store: more [store] keys); the
    teardown kills its agent and removes all three."""
    build.require(build.lib)
    made = []
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def make(bucket, server=None, boto_client=None, endpoint=None, store=None, **options):
        server = server or minio
        tag = secrets.token_hex(5)
        base = f"/mnt/rwsplit-wt-{tag}"
        assert not os.path.exists(base)
        spool = tmp_path / f"spool-{tag}"
        spool.mkdir()
        cache_dir = Path(f"/dev/shm/rwsplit-wt-{tag}")
        opts = dict(ROUTE_DEFAULTS)
        opts["spool"] = spool
        opts.update(options)
        conf = tmp_path / f"rwsplit-{tag}.conf"
        conf.write_text(f"[global]\ncache_dir = {cache_dir}\n\n" + server.config_text(
            routes=[("write", f"{base}/out", f"s3://{bucket}/{PREFIX}", opts)],
            endpoint=endpoint, **(store or {})))
        wt = WTree(server, boto_client or boto, build, bucket, base, conf, spool, cache_dir,
                   str(home))
        made.append(wt)
        return wt

    yield make
    for wt in made:
        wt.kill_children()
        wt.kill_agents()
        shutil.rmtree(wt.base, ignore_errors=True)
        shutil.rmtree(wt.spool, ignore_errors=True)
        shutil.rmtree(wt.cache_dir, ignore_errors=True)


@pytest.fixture
def wt(make_wtree, bucket):
    return make_wtree(bucket)


@pytest.fixture
def local(minio, tmp_path):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    side = Local(tmp_path / "local" / "out", minio, str(home))
    try:
        yield side
    finally:
        side.kill_children()


@pytest.fixture(scope="module")
def src_tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("src") / "tree", TREE, TREE_LINKS,
                     TREE_EMPTY_DIRS)


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    d = tmp_path_factory.mktemp("scripts")
    out = {}
    for name, text in SCRIPTS.items():
        (d / name).write_text(textwrap.dedent(text))
        out[name] = d / name
    return out


def py(script, *args):
    return [sys.executable, str(script), *map(str, args)]


# -- scripts ---------------------------------------------------------------------------------

SCRIPTS = {
    # Test 5: the Python library writers in one interpreter.
    "pylib.py": r"""
        import json, os, shutil, sqlite3, sys, tempfile, zipfile
        import numpy as np
        out, src = sys.argv[1], sys.argv[2]
        with tempfile.NamedTemporaryFile(dir=out, delete=False, prefix="ntf-",
                                         suffix=".txt") as f:
            f.write(b"named temporary\n" * 1000)
        ntf = os.path.basename(f.name)
        shutil.copytree(src, os.path.join(out, "ct"), symlinks=True)
        os.makedirs(os.path.join(out, "mv"))
        shutil.move(os.path.join(out, "ct", "sub"), os.path.join(out, "mv", "sub2"))
        os.makedirs(os.path.join(out, "db"))
        con = sqlite3.connect(os.path.join(out, "db", "test.db"), isolation_level=None)
        assert con.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
        con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        for tx in range(5):
            con.execute("BEGIN")
            for i in range(tx * 200 + 1, tx * 200 + 201):
                con.execute("INSERT INTO t VALUES (?, ?)", (i, "v%d" % i + "." * (i % 50)))
            con.execute("COMMIT")
        con.execute("BEGIN")
        con.execute("UPDATE t SET v = v || '!' WHERE id % 3 = 0")
        con.execute("COMMIT")
        con.execute("BEGIN")
        con.execute("DELETE FROM t WHERE id % 7 = 0")
        con.execute("COMMIT")
        con.close()
        os.makedirs(os.path.join(out, "z"))
        with zipfile.ZipFile(os.path.join(out, "z", "a.zip"), "w",
                             compression=zipfile.ZIP_DEFLATED) as z:
            for k in range(3):
                zi = zipfile.ZipInfo("m%d.txt" % k, date_time=(2020, 1, 2, 3, 4, 6))
                zi.compress_type = zipfile.ZIP_DEFLATED
                with z.open(zi, "w") as m:     # streamed: the header is patched by a seek back
                    for j in range(200):
                        m.write(("member %d line %d\n" % (k, j)).encode())
        os.makedirs(os.path.join(out, "np"))
        np.save(os.path.join(out, "np", "a.npy"),
                np.arange(100000, dtype=np.float64).reshape(1000, 100))
        print(json.dumps({"ntf": ntf}))
    """,
    # Test 6.
    "safet.py": r"""
        import sys
        import numpy as np
        from safetensors.numpy import save_file
        save_file({"w": np.arange(60000, dtype=np.float32).reshape(300, 200) / 7,
                   "b": np.arange(17, dtype=np.int64) - 5,
                   "e": np.zeros((0, 3), dtype=np.float16)},
                  sys.argv[1], metadata={"format": "np", "step": "7"})
    """,
    # Test 7: a child with cwd= inside OUT writes relative paths.
    "cwd.py": r"""
        import os, subprocess, sys
        d = os.path.join(sys.argv[1], "cwd", "sub")
        os.makedirs(d)
        subprocess.run([sys.executable, "-c", "open('rel.txt', 'w').write('y' * 1000)"],
                       cwd=d, check=True)
        subprocess.run(["sh", "-c", "echo z > rel2.txt && mkdir -p d && echo w > d/w.txt"],
                       cwd=d, check=True)
        print("ok")
    """,
    # Test 9: appends a line every 0.2 s until a line arrives on stdin (N < 0), or writes N
    # lines at once; then closes and prints "closed LINES".
    "logw.py": r"""
        import select, sys
        path, n = sys.argv[1], int(sys.argv[2])
        line = lambda i: "line %04d %s\n" % (i, "x" * (i % 40))
        i = 0
        with open(path, "a", buffering=1) as f:
            if n >= 0:
                for i in range(n):
                    f.write(line(i))
                i = n
            else:
                while True:
                    f.write(line(i))
                    i += 1
                    if i == 1:
                        print("started", flush=True)
                    if select.select([sys.stdin], [], [], 0.2)[0]:
                        break
        print("closed %d" % i, flush=True)
    """,
    # Test 9: a reader (preloaded or not) prints the number of bytes and the content's sha.
    "readlog.py": r"""
        import hashlib, json, sys
        data = open(sys.argv[1], "rb").read()
        print(json.dumps({"n": len(data), "sha": hashlib.sha256(data).hexdigest()}))
    """,
    # Test 9: N files written to a temporary name and renamed to the final one.
    "renamer.py": r"""
        import os, random, sys
        d, w, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        sizes = [0, 1, 1000, 65536, 300 * 1024, 7]
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            size = (6 << 20) + 1 if (w, i) == (0, 3) else sizes[(w + i) % len(sizes)]
            tmp = os.path.join(d, ".tmp-%d-%d" % (w, i))
            with open(tmp, "wb") as f:
                f.write(random.Random("%d-%d" % (w, i)).randbytes(size))
            os.rename(tmp, os.path.join(d, "f-%d-%d.bin" % (w, i)))
    """,
    # Test 10: writes files (path=size ...), closes them, prints "closed", waits on stdin.
    "hold.py": r"""
        import os, random, sys
        for spec in sys.argv[1:]:
            path, size = spec.rsplit("=", 1)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(random.Random(os.path.basename(path)).randbytes(int(size)))
        print("closed", flush=True)
        sys.stdin.readline()
    """,
    # Test 10: writes half of TOTAL bytes in 1 MiB writes, prints "half" and waits (open).
    "partial.py": r"""
        import os, random, sys
        path, total = sys.argv[1], int(sys.argv[2])
        data = random.Random("partial").randbytes(total)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, total // 2, 1 << 20):
            os.write(fd, data[off:off + (1 << 20)])
        print("half", flush=True)
        sys.stdin.readline()
        os.write(fd, data[total // 2:])
        os.close(fd)
    """,
}


# -- 1. tar ----------------------------------------------------------------------------------


def test_tar_extract_after_mkdir(wt, local, src_tree):
    """mkdir -p OUT/t, then tar -C OUT/t -xf - (two preloaded processes): the tree is the
    one tar makes locally; the bucket holds its regular files only."""
    tarball = subprocess.run(["tar", "-C", str(src_tree), "-cf", "-", "."],
                             capture_output=True, check=True).stdout
    for side in (local, wt):
        ok(side.run(["mkdir", "-p", side.path("t")]))
        ok(side.run(["tar", "-C", side.path("t"), "-xf", "-"], stdin_data=tarball))
    st = os.stat(wt.out)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid(), st
    assert_same_tree(wt.out, local.out)
    expected = expected_objects(wt)
    assert len(expected) == len(TREE)
    assert_bucket(wt, expected)


# -- 2. rsync --------------------------------------------------------------------------------


def test_rsync_then_rsync_delete(wt, local, src_tree, tmp_path):
    """rsync -a SRC/ OUT/r/, then SRC changes (one file modified, one deleted, one added)
    and rsync -a --delete SRC/ OUT/r/: the bucket mirrors SRC exactly after each."""
    src = tmp_path / "rsrc"
    shutil.copytree(src_tree, src, symlinks=True)

    def src_objects():
        return {wt.key(f"r/{rel}"): p for rel, p in regular_files(src).items()}

    for side in (local, wt):
        ok(side.run(["rsync", "-a", f"{src}/", side.path("r") + "/"]))
    assert_same_tree(wt.out, local.out)
    assert_bucket(wt, src_objects(), "after the first rsync\n")

    (src / "a.txt").write_bytes(b"modified, and of another size\n")
    (src / "sub" / "x 1.bin").unlink()
    (src / "sub" / "deep" / "added.bin").write_bytes(blob("added", 3000))
    for side in (local, wt):
        ok(side.run(["rsync", "-a", "--delete", f"{src}/", side.path("r") + "/"]))
    assert_same_tree(wt.out, local.out)
    assert_same_tree(wt.path("r"), src)
    assert_bucket(wt, src_objects(), "after rsync --delete\n")


# -- 3. git ----------------------------------------------------------------------------------


GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_DATE": "2020-01-02T03:04:05Z",
    "GIT_COMMITTER_DATE": "2020-01-02T03:04:05Z",
}
GIT_ID = ["-c", "user.name=Tree Test", "-c", "user.email=tree@example.com"]


def test_git_init_add_commit_fsck(wt, local, tmp_path):
    """git init, add, two commits, log, fsck --strict and status work in the route as on
    local disk; the bucket holds every regular file of OUT/repo (the .git objects, refs,
    logs), none of the lock files; a clone of the bucket's keys is a sound repository with
    the same history."""
    writer = tmp_path / "gitfiles.py"
    writer.write_text(textwrap.dedent(r"""
        import os, random, sys
        repo, step = sys.argv[1], sys.argv[2]
        def w(rel, data):
            os.makedirs(os.path.dirname(os.path.join(repo, rel)), exist_ok=True)
            with open(os.path.join(repo, rel), "wb") as f:
                f.write(data)
        if step == "1":
            w("README.md", b"# repo\n")
            w("src/a.py", b"print('a')\n" * 50)
            w("data/blob.bin", random.Random("blob").randbytes(200 * 1024))
            w("dir with space/\u00fc.txt", b"unicode\n")
        else:
            w("README.md", b"# repo\nsecond commit\n")
            os.unlink(os.path.join(repo, "src", "a.py"))
            w("src/b.py", b"print('b')\n")
    """))
    logs = {}
    for side in (local, wt):
        repo = side.path("repo")
        git = ["git", "-C", repo, *GIT_ID]
        ok(side.run(["git", "-c", "init.defaultBranch=main", "init", "-q", repo],
                    extra_env=GIT_ENV))
        for step, msg in (("1", "first"), ("2", "second")):
            ok(side.run([sys.executable, writer, repo, step]))
            ok(side.run(git + ["add", "-A"], extra_env=GIT_ENV))
            ok(side.run(git + ["commit", "-q", "-m", msg], extra_env=GIT_ENV))
        log = ok(side.run(git + ["log", "--format=%H %s", "--name-status"],
                          extra_env=GIT_ENV))
        ok(side.run(git + ["fsck", "--strict", "--no-progress"], extra_env=GIT_ENV))
        status = ok(side.run(git + ["status", "--porcelain"], extra_env=GIT_ENV))
        assert status.stdout == b"", status.describe()
        logs[side is wt] = log.stdout
    assert logs[True] == logs[False]
    # .git/index holds inode numbers and times: its bytes differ, its name does not.
    assert_same_tree(wt.out, local.out, content_differs={"repo/.git/index"})

    expected = expected_objects(wt)
    assert not [k for k in expected if k.endswith(".lock")]
    assert any(k.startswith(wt.key("repo/.git/objects/")) for k in expected)
    assert_bucket(wt, expected)

    clone = tmp_path / "from-bucket"
    for key in expected:
        p = clone / key[len(PREFIX):]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(object_bytes(wt.boto, wt.bucket, key))
    repo = clone / "repo"
    (repo / ".git" / "refs" / "tags").mkdir(parents=True, exist_ok=True)  # empty: not stored
    git = ["git", "-C", repo, *GIT_ID]
    ok(local.run(git + ["fsck", "--strict", "--no-progress"], extra_env=GIT_ENV))
    log = ok(local.run(git + ["log", "--format=%H %s", "--name-status"], extra_env=GIT_ENV))
    assert log.stdout == logs[True]


# -- 4. cp -a and mv -------------------------------------------------------------------------


def test_cp_a_awkward_names_then_mv_dirs(wt, local, tmp_path):
    """cp -a of a tree with awkward names (space, unicode, %, +, =), then mv of a directory
    inside the route and mv of the whole copy: old keys gone, new keys present."""
    src = make_tree(tmp_path / "awk", AWKWARD, {"l nk": "sp ace.txt"}, ["empty dir"])
    steps = [
        ["cp", "-a", src, "{OUT}/c"],
        ["mv", "{OUT}/c/dir with space", "{OUT}/c/moved dir+%"],
        ["mv", "{OUT}/c", "{OUT}/c2"],
    ]
    for n, step in enumerate(steps):
        for side in (local, wt):
            ok(side.run([str(a).replace("{OUT}", side.out) for a in step]))
        ctx = f"after {step}\n"
        assert_same_tree(wt.out, local.out, context=ctx)
        expected = expected_objects(wt)
        assert len(expected) == len(AWKWARD), ctx
        assert_bucket(wt, expected, ctx)
    assert all(k.startswith(wt.key("c2/")) for k in expected)
    assert wt.key("c2/moved dir+%/inner dir/ü ü.bin") in expected


# -- 5. Python library writers ---------------------------------------------------------------


def test_python_tempfile_shutil_sqlite_zip_numpy(wt, local, scripts, src_tree, tmp_path):
    """One preloaded interpreter: NamedTemporaryFile(delete=False), shutil.copytree,
    shutil.move of a directory, sqlite3 (journal_mode=DELETE, several transactions), a
    streamed zipfile (seeks back) and numpy.save."""
    import numpy as np
    names = {}
    for side in (local, wt):
        res = ok(side.run(py(scripts["pylib.py"], side.out, src_tree)))
        names[side is wt] = json.loads(res.stdout)["ntf"]
        # The sqlite3 CLI reads the db back (it opens it read-write: closed after "writing").
        res = ok(side.run(["sqlite3", side.path("db/test.db"),
                           "PRAGMA integrity_check; SELECT count(*) FROM t;"]))
        assert res.stdout == b"ok\n858\n", res.describe()
    assert_same_tree(wt.out, local.out, rename={names[True]: names[False]})
    expected = expected_objects(wt)
    assert not [k for k in expected if "journal" in k]
    assert wt.key(names[True]) in expected
    assert_bucket(wt, expected)

    db = tmp_path / "from-bucket.db"
    db.write_bytes(object_bytes(wt.boto, wt.bucket, wt.key("db/test.db")))
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    rows = con.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    con.close()
    want = [(i, "v%d" % i + "." * (i % 50) + ("!" if i % 3 == 0 else ""))
            for i in range(1, 1001) if i % 7]
    assert rows == want

    with zipfile.ZipFile(io.BytesIO(object_bytes(wt.boto, wt.bucket, wt.key("z/a.zip")))) as z:
        assert z.testzip() is None
        assert z.namelist() == ["m0.txt", "m1.txt", "m2.txt"]
        for k in range(3):
            assert z.read(f"m{k}.txt") == b"".join(
                f"member {k} line {j}\n".encode() for j in range(200))

    arr = np.load(io.BytesIO(object_bytes(wt.boto, wt.bucket, wt.key("np/a.npy"))))
    assert np.array_equal(arr, np.arange(100000, dtype=np.float64).reshape(1000, 100))


# -- 6. safetensors --------------------------------------------------------------------------


def test_safetensors_save_file(wt, local, scripts):
    """safetensors.numpy.save_file into the route: the object loads back equal."""
    try:
        import numpy as np
        from safetensors.numpy import load
    except ImportError:
        pytest.fail("the Python package safetensors is missing: pip install -r "
                    "tests/requirements.txt", pytrace=False)
    for side in (local, wt):
        ok(side.run([sys.executable, "-c", "import os, sys; os.makedirs(sys.argv[1])",
                     side.path("st")]))
        ok(side.run(py(scripts["safet.py"], side.path("st/model.safetensors"))))
    # The header's JSON lists the tensors in hash-map order: the bytes may differ between
    # two runs, what they load to may not.
    assert_same_tree(wt.out, local.out, content_differs={"st/model.safetensors"})
    assert_bucket(wt, expected_objects(wt))
    got = load(object_bytes(wt.boto, wt.bucket, wt.key("st/model.safetensors")))
    ref = load(Path(local.path("st/model.safetensors")).read_bytes())
    assert sorted(ref) == sorted(got)
    for name in ref:
        assert np.array_equal(got[name], ref[name]) and got[name].dtype == ref[name].dtype
    assert sorted(got) == ["b", "e", "w"]
    assert np.array_equal(got["w"], np.arange(60000, dtype=np.float32).reshape(300, 200) / 7)
    assert got["w"].dtype == np.float32
    assert np.array_equal(got["b"], np.arange(17, dtype=np.int64) - 5)
    assert got["e"].shape == (0, 3) and got["e"].dtype == np.float16


# -- 7. shells and working directories -------------------------------------------------------


def test_shell_cd_exec_and_subprocess_cwd(wt, local, scripts):
    """cd by the shell then a relative write; a redirection followed by `exec` (no normal
    exit of the shell: poll); subprocess.run(cwd=<dir in OUT>) writing relative paths."""
    write_a = shlex.quote(f"{sys.executable}") + " -c 'open(\"a.txt\", \"w\").write(\"x\")'"
    for side in (local, wt):
        out = shlex.quote(side.out)
        ok(side.run(["bash", "-c", f"mkdir -p {out}/run1 && cd {out}/run1 && {write_a}"]))
    assert_same_tree(wt.out, local.out)
    assert_bucket(wt, {wt.key("run1/a.txt"): b"x"}, "after cd + write\n")

    for side in (local, wt):
        ok(side.run(["bash", "-c", f"echo ok > {shlex.quote(side.out)}/status.txt; "
                                   "exec sleep 0.1"]))
    assert_same_tree(wt.out, local.out)
    wait_bucket(wt, {wt.key("run1/a.txt"): b"x", wt.key("status.txt"): b"ok\n"},
                context="after echo > status.txt; exec sleep\n")

    for side in (local, wt):
        res = ok(side.run(py(scripts["cwd.py"], side.out)))
        assert res.stdout == b"ok\n", res.describe()
    assert_same_tree(wt.out, local.out)
    expected = expected_objects(wt)
    assert sorted(expected) == sorted(wt.key(k) for k in [
        "run1/a.txt", "status.txt", "cwd/sub/rel.txt", "cwd/sub/rel2.txt", "cwd/sub/d/w.txt"])
    assert_bucket(wt, expected, "after subprocess.run(cwd=...)\n")


# -- 8. a statically linked writer -----------------------------------------------------------


def test_static_writer_renameat(wt, local, build):
    """A static binary (LD_PRELOAD does not apply) writes OUT/st/static.bin.tmp, renames it
    with the raw renameat syscall to static.bin, and writes stdin to stdin.bin: the final
    keys appear (poll), the temporary name never remains."""
    exe = build.root / "tests" / "wr_static"
    if not exe.exists():
        pytest.fail(f"{exe} is missing: build it (`make integration` builds tests/static/*.c "
                    f"statically, or alone: `make BUILD={build.root} {exe}`)", pytrace=False)
    size = 3 * MiB + 5
    stdin_data = blob("stdin", 100 * KiB)
    for side in (local, wt):
        ok(side.run(["mkdir", "-p", side.path("st")]))   # preloaded: creates the tree
        res = ok(side.run([exe, side.path("st/static.bin.tmp"), size,
                           side.path("st/static.bin")]))
        assert res.stdout == f"ok {size}\n".encode(), res.describe()
        res = ok(side.run([exe, side.path("st/stdin.bin"), "-"], stdin_data=stdin_data))
        assert res.stdout == f"ok {len(stdin_data)}\n".encode(), res.describe()
    assert_same_tree(wt.out, local.out)
    assert Path(wt.path("st/static.bin")).read_bytes() == static_pattern(size)
    expected = {wt.key("st/static.bin"): static_pattern(size),
                wt.key("st/stdin.bin"): stdin_data}
    wait_bucket(wt, expected)
    # ... and stays so: no late upload of the temporary name.
    time.sleep(1.0)
    assert_bucket(wt, expected, "1 s after the final keys appeared\n")


# -- 9. concurrency --------------------------------------------------------------------------


def test_log_open_read_by_others_and_snapshotted(make_wtree, bucket, local, scripts):
    """A preloaded writer keeps OUT/log.txt open and appends a line every 0.2 s. Meanwhile
    wc -l, tail -n1 and Python (preloaded, and not) read it and see what local disk holds;
    with snapshot_interval=1s the bucket holds a non-empty prefix of it within 5 s while it
    is still open; after the writer's exit the bucket holds all of it."""
    wt = make_wtree(bucket, snapshot_interval="1s")
    log = wt.path("log.txt")
    ok(wt.run(["mkdir", "-p", wt.out]))
    writer = wt.spawn(py(scripts["logw.py"], log, -1))
    start = time.monotonic()
    writer.expect("started")

    def native():
        with open(log, "rb") as f:
            return f.read()

    wait_for(lambda: native().count(b"\n") >= 5, 10, "5 lines in the log")
    plain = Local(wt.out, wt.server, wt.home)
    for reader in (wt, plain):
        before = native()
        wc = ok(reader.run(["wc", "-l", log]))
        tail = ok(reader.run(["tail", "-n1", log]))
        pyr = ok(reader.run(py(scripts["readlog.py"], log)))
        after = native()
        ctx = f"reader {'preloaded' if reader is wt else 'plain'}\n"
        n = int(wc.stdout.split()[0])
        assert before.count(b"\n") <= n <= after.count(b"\n"), (ctx, wc.describe())
        last = tail.stdout
        assert last.endswith(b"\n") and after.find(last) >= 0 and \
            after.find(last) + len(last) >= len(before), (ctx, tail.describe())
        seen = json.loads(pyr.stdout)
        assert len(before) <= seen["n"] <= len(after), (ctx, pyr.describe())
        assert seen["sha"] == sha256_bytes(after[:seen["n"]]), (ctx, pyr.describe())

    snap = None
    deadline = start + 5.0
    while snap is None:
        assert writer.proc.poll() is None, "the writer stopped"
        try:
            data = object_bytes(wt.boto, wt.bucket, wt.key("log.txt"))
        except wt.boto.exceptions.NoSuchKey:
            data = b""
        if data:
            snap = data
            break
        assert time.monotonic() < deadline, (
            f"no snapshot of the open log.txt within 5 s{wt.diagnostics()}")
        time.sleep(POLL_STEP)
    now = native()
    assert now.startswith(snap), f"snapshot is not a prefix of the log: {snap[-200:]!r}"
    assert snap.endswith(b"\n"), f"snapshot ends mid-line: {snap[-80:]!r}"

    writer.send("stop")
    line = writer.expect("closed")
    res = ok(writer.wait())
    lines = int(line.split()[1])
    ok(local.run(py(scripts["logw.py"], local.path("log.txt"), lines)))
    assert_same_tree(wt.out, local.out, context=res.describe())
    assert_bucket(wt, expected_objects(wt), res.describe())


def test_eight_writers_rename_in_one_directory(wt, local, scripts):
    """8 preloaded processes at once, each writing files to a temporary name and renaming
    them to the final one in the same directory: all finals present, no temporary key."""
    workers, per = 8, 6
    for side in (local, wt):
        ok(side.run(["mkdir", "-p", side.path("cc")]))
        children = [side.spawn(py(scripts["renamer.py"], side.path("cc"), w, per))
                    for w in range(workers)]
        for child in children:
            ok(child.wait())
    assert_same_tree(wt.out, local.out)
    expected = expected_objects(wt)
    assert sorted(expected) == sorted(wt.key(f"cc/f-{w}-{i}.bin")
                                      for w in range(workers) for i in range(per))
    assert_bucket(wt, expected)


# -- 10. faults ------------------------------------------------------------------------------


def test_sigkill_right_after_close(wt, scripts):
    """SIGKILL the writer right after it closed a 1 MiB file: the object lands (poll)."""
    path = wt.path("k/one-mib.bin")
    child = wt.spawn(py(scripts["hold.py"], f"{path}={MiB}"))
    child.expect("closed")
    child.killed()
    data = blob("one-mib.bin", MiB)
    assert Path(path).read_bytes() == data
    wait_bucket(wt, {wt.key("k/one-mib.bin"): data})


def test_sigkill_in_the_middle_of_a_multipart_file(wt, scripts):
    """SIGKILL a writer halfway through a 40 MiB file (multipart above 5 MiB): the kill
    closes it, the object lands whole (the bytes the tree holds), no multipart upload is
    left incomplete."""
    total = 40 * MiB
    path = wt.path("big/forty.bin")
    ok(wt.run(["mkdir", "-p", wt.path("big")]))
    child = wt.spawn(py(scripts["partial.py"], path, total))
    child.expect("half")
    child.killed()
    data = random.Random("partial").randbytes(total)[:total // 2]
    assert Path(path).read_bytes() == data
    wait_bucket(wt, {wt.key("big/forty.bin"): data})
    assert pending_multipart(wt.boto, wt.bucket) == []


def test_multipart_file_through_lost_responses(make_wtree, bucket, minio, tmp_path):
    """Between the tree agent and MinIO, an injector loses the responses to
    CreateMultipartUpload and to CompleteMultipartUpload (both took effect in the store) and
    answers two part PUTs with 503 SlowDown: the 12 MiB file still lands once, whole, with
    no upload left open, and the writer hears of no failure."""
    data = blob("faults", 12 * MiB + 3)
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    with S3Faults(minio.port) as faults:
        faults.add("POST", "uploads", "lose", times=1)
        faults.add("POST", "uploadId", "lose", times=1)
        faults.add("PUT", "partNumber", "503", times=2)
        wt = make_wtree(bucket, endpoint=faults.endpoint)
        ok(wt.run(["mkdir", "-p", wt.path("ckpt")]))
        ok(wt.run(["cp", src, wt.path("ckpt/model.bin")]))
        wait_bucket(wt, {wt.key("ckpt/model.bin"): data})
        assert faults.hits("lose") == 2 and faults.hits("503") == 2, faults.log
        assert len(faults.requests("POST", "uploads")) == 2
        assert len(faults.requests("POST", "uploadId")) == 2
    logs = "\n".join(p.read_text(errors="replace") for p in wt.agent_logs())
    assert "left by a lost CreateMultipartUpload response, aborted" in logs, wt.diagnostics()
    assert "CompleteMultipartUpload's response was lost; the object is there" in logs
    assert " failed" not in logs, wt.diagnostics()


WRITE_TOXICS = {
    "latency": [("latency", "upstream", {"latency": 60, "jitter": 20}),
                ("latency", "downstream", {"latency": 60, "jitter": 20})],
    "slicer": [("slicer", "upstream", {"average_size": 1500, "size_variation": 1000,
                                       "delay": 50})],
    # A connection is cut after 8 MiB: a 5 MiB part fits, the next one on it is cut.
    "limit_data": [("limit_data", "upstream", {"bytes": 8 * MiB})],
    # Outages in the middle of the upload (slowed to seconds by a bandwidth toxic).
    "reset_peer": [("bandwidth", "upstream", {"rate": 2 * 1024})],
    "timeout": [("bandwidth", "upstream", {"rate": 2 * 1024})],
}
WRITE_OUTAGES = {"reset_peer": {"timeout": 0}, "timeout": {"timeout": 0}}


@pytest.mark.parametrize("case", sorted(WRITE_TOXICS))
def test_uploads_through_a_bad_network(make_wtree, bucket, minio, tmp_path, case):
    """Toxiproxy between the tree agent and MinIO: a 12 MiB file (multipart, 5 MiB parts) and
    a 1 MiB one (PutObject) land whole and once, with no upload left open, under latency,
    slicer, limit_data, and an outage (reset_peer, or timeout: connections hang, which
    stall_timeout notices) that is removed after 3 s."""
    files = {"ckpt/model.bin": blob("model", 12 * MiB + 5), "ckpt/meta.json": blob("m", MiB)}
    for rel, data in files.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_bytes(data)
    with Toxiproxy(minio.port) as toxi:
        for i, (kind, stream, attrs) in enumerate(WRITE_TOXICS[case]):
            toxi.add(f"t{i}", kind, stream=stream, **attrs)
        # One part at a time for limit_data, so that parts share a connection and get cut.
        wt = make_wtree(bucket, endpoint=toxi.endpoint, store={
            "retry_time": "40s", "max_attempts": 60, "stall_timeout": "2s",
            "connect_timeout": "1s"}, drain_timeout="60s",
            part_concurrency=1 if case == "limit_data" else 4)
        # cp's exit waits for the uploads: the outage falls while they run.
        child = wt.spawn(["cp", "-r", tmp_path / "src" / "ckpt", wt.path()])
        if case in WRITE_OUTAGES:
            time.sleep(1.0)
            toxi.add(case, case, stream="upstream", **WRITE_OUTAGES[case])
            time.sleep(3.0)
            toxi.remove(case)
        ok(child.wait(timeout=90))
        wait_bucket(wt, {wt.key(rel): data for rel, data in files.items()}, timeout=60)
    logs = "\n".join(p.read_text(errors="replace") for p in wt.agent_logs())
    assert " failed" not in logs, wt.diagnostics()
    if case in WRITE_OUTAGES or case == "limit_data":  # the fault did hit an upload
        # (retried by the client, or re-sent by libcurl itself on a new connection)
        assert "retrying PUT" in logs or "re-sent by libcurl" in logs, wt.diagnostics()


def test_eight_threads_write_and_rename(wt, local, build):
    """tests/tools/mtroute: 8 threads of one process each write 12 files of 150 KiB through
    a temporary name renamed into place, then rename one more: the tree and the bucket
    match the same program's run on a local directory (`make tsan` runs it with the tree
    agent built with ThreadSanitizer)."""
    tool = build.require(build.root / "tests" / "mtroute")
    os.makedirs(local.path(), exist_ok=True)
    for side in (local, wt):
        ok(side.run([tool, "write", side.path(), 8, 12, 150 * KiB], timeout=120))
    assert_same_tree(wt.out, local.out)
    wait_bucket(wt, expected_objects(wt))


def test_agent_killed_then_recover(make_wtree, bucket, scripts):
    """Node restart: files closed, then the agent SIGKILLed before their upload_delay
    passed (and the writer too); `rwsplit recover -c CONF` uploads what the tree holds."""
    wt = make_wtree(bucket, upload_delay="5s")
    files = {"n/small.txt": 10, "n/one.bin": MiB, "n/d/six.bin": 6 * MiB + 1}
    child = wt.spawn(py(scripts["hold.py"], *[f"{wt.path(r)}={n}" for r, n in files.items()]))
    child.expect("closed")
    wait_for(wt.agents, 5, f"a tree agent for {wt.out}")
    killed = wt.kill_agents()
    assert killed and not wt.agents()
    child.killed()
    # upload_delay (5 s) has not passed: nothing was uploaded, recover has all to do.
    assert bucket_objects(wt.boto, wt.bucket) == {}
    res = wt.recover()
    assert res.returncode == 0, res.describe()
    expected = {wt.key(r): blob(os.path.basename(r), n) for r, n in files.items()}
    assert expected_objects(wt).keys() == expected.keys()
    assert_bucket(wt, expected, res.describe())


def test_store_down_during_save(make_wtree, restartable_minio, scripts):
    """MinIO stopped: a preloaded writer still exits 0 within drain_timeout (3 s), the file
    stays in the tree; MinIO back: the object lands (the agent retries; poll up to 30 s)."""
    server = restartable_minio
    mc = Mc(server)
    name = random_bucket_name("wt")
    try:
        mc.mb(name)
        wt = make_wtree(name, server=server, boto_client=server.boto3_client(),
                        drain_timeout="3s")
        ok(wt.run(["mkdir", "-p", wt.path("down")]))        # the agent runs, store up
        server.stop(keep_data=True, hard=True)
        path = wt.path("down/f.bin")
        res = wt.run(py(scripts["hold.py"], f"{path}={MiB}"), stdin_data=b"\n", timeout=20)
        assert res.returncode == 0, res.describe()
        assert res.elapsed < 3 + 4, f"exit took {res.elapsed:.1f} s\n{res.describe()}"
        data = blob("f.bin", MiB)
        assert Path(path).read_bytes() == data
        server._fixed_port = True          # same port: the config names it
        server.start()
        wait_bucket(wt, {wt.key("down/f.bin"): data}, timeout=30, context=res.describe())
    finally:
        if server.running():
            try:
                mc.rb(name)
            except Exception:  # noqa: BLE001
                pass
        mc.close()


# -- objects already in the store ------------------------------------------------------------


def test_resume_objects_already_in_the_store(wt):
    """Objects put (boto3) before the agent takes over the tree appear in it: a preloaded
    cat prints the content, ls -l shows the size; the bucket is left as it was."""
    data = blob("old", 300 * KiB + 7)
    wt.boto.put_object(Bucket=wt.bucket, Key=wt.key("pre/old.bin"), Body=data)
    wt.boto.put_object(Bucket=wt.bucket, Key=wt.key("pre/sub/n.txt"), Body=b"note\n")
    res = ok(wt.run(["cat", wt.path("pre/old.bin")]))
    assert res.stdout == data, f"cat printed {len(res.stdout)} bytes\n{res.describe()}"
    res = ok(wt.run(["ls", "-ln", wt.path("pre")]))
    sizes = {}
    for line in res.stdout.decode().splitlines()[1:]:
        fields = line.split(None, 8)
        sizes[fields[8]] = (fields[0][0], int(fields[4]))
    assert sizes.get("old.bin") == ("-", len(data)), res.describe()
    assert sizes.get("sub", ("?",))[0] == "d", res.describe()
    res = ok(wt.run(["cat", wt.path("pre/sub/n.txt")]))
    assert res.stdout == b"note\n", res.describe()
    assert_bucket(wt, {wt.key("pre/old.bin"): data, wt.key("pre/sub/n.txt"): b"note\n"})
