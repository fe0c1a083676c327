"""Read routes (issue 3) end to end: unmodified programs under LD_PRELOAD against a real MinIO.

One tree of files is uploaded with mc (an independent client) to s3://<bucket>/data/ and kept
on local disk. Every test then runs real programs (coreutils, tar, dd, Python, numpy) once on
the local copy without rwsplit and once on a read route with rwsplit, and compares the
outputs byte for byte after replacing each root path with "ROOT".

Every test has its own route path (which does not exist on disk) and its own cache directory
under /dev/shm, removed afterwards. The local copy is chmod'ed to what a read route shows
(files r--r--r--, directories r-xr-xr-x) so listings can be compared mode for mode. /tmp is
ext4 here, where a small directory has st_size 4096, which is what read routes report too.

Run from the repository root (own build dir, so as not to race other builds):
    make BUILD=/tmp/build-rt all
    RWSPLIT_BUILD=/tmp/build-rt .tools/venv/bin/python -m pytest -q \
        tests/integration/test_read_routes.py
"""

import errno
import json
import os
import random
import re
import secrets
import shutil
import stat
import struct
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import proc
from tests.harness.checks import sha256_bytes, sha256_file
from tests.harness.minio import random_bucket_name
from tests.harness.proc import LOCALE, expect_ok, py

KiB = 1 << 10
MiB = 1 << 20

# A fixed seed keeps the random offsets reproducible; the file contents are random bytes.
RNG_SEED = 20240603

# relative path -> size. Nested dirs (a/b/c/d: 4 levels), 0 B .. 40 MiB, awkward names: spaces,
# unicode, %, +, =, a literal "%2F" and "%41" (must not be URL-decoded), and "a.txt" beside
# the directory "a/" ('.' sorts before '/' in a listing).
TREE = {
    "empty.bin": 0,
    "one.bin": 1,
    "a.txt": 100,
    "a/small 4k.bin": 4 * KiB,
    "a/b/deep-110k.dat": 110 * KiB,
    "a/b/c/ünïcødé 文件.txt": 5000,
    "a/b/c/pct%41 plus+eq=.bin": 777,
    "a/b/c/d/leaf.txt": 123,
    "big/three-3m.bin": 3 * MiB,
    "big/huge-40m.bin": 40 * MiB,
    "dir with space/x+y=z%2F.txt": 64,
    "ünï dir/=+%.bin": 10,
    "arrays/raw.f32": 40000,
    # arrays/arr.npy: a 5 MiB float32 .npy (so np.load(mmap_mode='r') maps a lazily filled
    # object), written by make_npy below.
}
NPY_SHAPE = (1280, 1024)
HUGE = "big/huge-40m.bin"
THREE = "big/three-3m.bin"

# A second prefix for the cache-budget test: many 1 MiB objects and a few 3 MiB ones.
MANY = {f"m{i:02d}.bin": MiB for i in range(20)}
MANY.update({f"n{i}.bin": 3 * MiB for i in range(2)})

# A third prefix with one directory of more entries than one ListObjectsV2 page (1000 keys):
# WIDE_FILES small objects plus WIDE_DIRS subdirectories (common prefixes).
WIDE_FILES = 1150
WIDE_DIRS = 30

# How a read route is configured unless a test says otherwise: objects above 4 MiB (the 5 MiB
# .npy and the 40 MiB file) go through the background-fill path.
ROUTE_DEFAULTS = {"whole_object_max": "4MiB"}

RUN_TIMEOUT = 90

SUMMARY_RE = re.compile(rb"rwsplit\[(\d+)\] info: read summary: (.*)$", re.MULTILINE)
SUMMARY_FIELDS = {
    "opened": rb"(\d+) files opened",
    "from_cache": rb"\((\d+) from cache\)",
    "bytes_store": rb"(\d+) bytes from the store",
    "bytes_cache": rb"(\d+) bytes from cache",
    "gets": rb"(\d+) GETs",
    "lists": rb"(\d+) LISTs",
    "prefetched": rb"(\d+) prefetched",
    "prefetch_hits": rb"(\d+) prefetch hits",
    "evictions": rb"(\d+) evictions",
}


# -- helpers ---------------------------------------------------------------------------------


def make_npy(shape, payload):
    """A version 1.0 .npy file of little-endian float32 (written by hand: numpy is optional)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)
    pad = (-(10 + len(header) + 1)) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


class Result(proc.Result):
    def summaries(self):
        """The rwsplit read-summary lines of stderr, parsed (one dict per process)."""
        out = []
        for m in SUMMARY_RE.finditer(self.stderr):
            d = {"pid": int(m.group(1))}
            for key, rx in SUMMARY_FIELDS.items():
                f = re.search(rx, m.group(2))
                d[key] = int(f.group(1)) if f else None
            out.append(d)
        return out


def run(args, env, timeout=RUN_TIMEOUT, stdin_data=None):
    return proc.run(args, env, timeout, stdin_data, Result)


def run_together(argvs, env, timeout=RUN_TIMEOUT):
    """Starts every argv at once and waits for all (killing what is left after timeout).
    Returns a Result per argv, in order; elapsed is the whole group's."""
    start = time.monotonic()
    procs = [subprocess.Popen([str(a) for a in argv], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
             for argv in argvs]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    elapsed = time.monotonic() - start
    return [Result(p.args, p.returncode, out, err, elapsed) for p, (out, err) in zip(procs, outs)]


class Route:
    """One read route: its local path (which does not exist on disk), cache dir and config."""

    def __init__(self, minio, build, bucket, prefix, conf, local, cache_dir, options):
        self.minio = minio
        self.build = build
        self.bucket = bucket
        self.prefix = prefix
        self.conf = conf
        self.local = local
        self.cache_dir = cache_dir
        self.options = options

    def path(self, rel=""):
        return f"{self.local}/{rel}" if rel else self.local

    def env(self, log="info", extra=None):
        return proc.preload_env(self.minio, self.build.lib, self.conf, log, extra)

    def run(self, args, timeout=RUN_TIMEOUT, log="info", stdin_data=None, via_cli=False,
            extra_env=None):
        if via_cli:
            env = self.env(log, extra_env)
            env.pop("LD_PRELOAD")
            env.pop("RWSPLIT_CONFIG")
            args = [self.build.rwsplit, "run", "-c", self.conf, "--", *args]
            return run(args, env, timeout, stdin_data)
        return run(args, self.env(log, extra_env), timeout, stdin_data)

    def obj_dirs(self):
        """CACHE_DIR/u<uid>/<route id>/obj for this route (one route per config here)."""
        return sorted(self.cache_dir.glob(f"u{os.getuid()}/*/obj"))


def local_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "RWSPLIT_CONFIG", "RWSPLIT_LOG", "RWSPLIT_LOG_FILE")}
    env["LC_ALL"] = LOCALE
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_local(args, timeout=RUN_TIMEOUT, stdin_data=None):
    return run(args, local_env(), timeout, stdin_data)


def norm(data, root):
    return data.replace(str(root).encode(), b"ROOT")


def same(local_root, route, make_args, *, stdin_data=None, via_cli=False,
         timeout=RUN_TIMEOUT):
    """Runs make_args(root) on local_root (no rwsplit) and on the route (rwsplit); asserts
    identical status, stdout and stderr (rwsplit's own lines aside) after normalizing roots,
    and that rwsplit logged no warning or error. Returns (local, routed)."""
    loc = run_local(make_args(local_root), timeout, stdin_data)
    assert loc.returncode == 0, loc.describe()
    rt = route.run(make_args(route.local), timeout=timeout, stdin_data=stdin_data,
                   via_cli=via_cli)
    assert rt.returncode == loc.returncode, rt.describe()
    assert norm(rt.stdout, route.local) == norm(loc.stdout, local_root), (
        f"stdout differs\nlocal:  {norm(loc.stdout, local_root)[:2000]!r}\n"
        f"routed: {norm(rt.stdout, route.local)[:2000]!r}\n{rt.describe()}")
    assert norm(rt.other_stderr(), route.local) == norm(loc.other_stderr(), local_root), \
        rt.describe()
    assert not rt.rwsplit_problems(), rt.describe()
    return loc, rt


# -- probe scripts (run by the same interpreter, with and without rwsplit) -------------------

SCRIPTS = {
    # Every file's sha256, by walking the tree and reading with open()/read().
    "walk_read.py": r"""
        import hashlib, json, os, sys
        root = sys.argv[1]
        out = {}
        for dp, dns, fns in os.walk(root):
            dns.sort()
            for fn in sorted(fns):
                p = os.path.join(dp, fn)
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                out[os.path.relpath(p, root)] = h.hexdigest()
        print(json.dumps(out, sort_keys=True, ensure_ascii=False))
    """,
    "os_walk.py": r"""
        import os, stat, sys
        root = sys.argv[1]
        for dp, dns, fns in os.walk(root):
            dns.sort()
            print(repr((os.path.relpath(dp, root), sorted(dns), sorted(fns))))
        print("bottom-up")
        seen, rows = set(), []
        for dp, dns, fns in os.walk(root, topdown=False):
            rel = os.path.relpath(dp, root)
            assert all(os.path.normpath(os.path.join(rel, d)) in seen for d in dns), rel
            seen.add(rel)
            rows.append((rel, sorted(dns), sorted(fns)))
        for row in sorted(rows):
            print(repr(row))
        print("fwalk")
        for dp, dns, fns, dfd in os.fwalk(root):
            dns.sort()
            st = os.stat(dfd)
            sizes = [os.stat(f, dir_fd=dfd).st_size for f in sorted(fns)]
            print(repr((os.path.relpath(dp, root), sorted(dns), sorted(fns), sizes,
                        stat.S_ISDIR(st.st_mode))))
    """,
    "scandir.py": r"""
        import os, stat, sys
        root = sys.argv[1]
        def walk(d):
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
            for e in entries:
                st = e.stat()
                lst = e.stat(follow_symlinks=False)
                print(repr((os.path.relpath(e.path, root), e.name, e.is_file(), e.is_dir(),
                            e.is_symlink(), st.st_size, oct(st.st_mode), lst.st_size,
                            oct(lst.st_mode))))
                if e.is_dir():
                    walk(e.path)
        walk(root)
        # scandir on a directory fd
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        with os.scandir(fd) as it:
            print(sorted((e.name, e.is_dir(), e.is_file(), e.stat().st_size) for e in it))
        os.close(fd)
    """,
    "os_stat.py": r"""
        import os, stat, sys
        root = sys.argv[1]
        for rel in sys.argv[2:]:
            p = os.path.join(root, rel) if rel != "." else root
            st, lst = os.stat(p), os.lstat(p)
            print(repr((rel, st.st_size, stat.S_IFMT(st.st_mode), oct(stat.S_IMODE(st.st_mode)),
                        lst.st_size, oct(lst.st_mode), os.path.isfile(p),
                        os.path.isdir(p), os.path.islink(p), os.path.exists(p),
                        os.path.getsize(p), os.access(p, os.R_OK), os.access(p, os.F_OK),
                        os.access(p, os.X_OK))))
    """,
    "seek_read.py": r"""
        import hashlib, json, os, sys
        path, spec = sys.argv[1], json.loads(sys.argv[2])
        with open(path, "rb") as f:
            for off, n in spec:
                f.seek(off)
                d = f.read(n)
                print(off, n, len(d), f.tell(), hashlib.sha256(d).hexdigest())
            print("size", f.seek(0, os.SEEK_END), f.tell())
            f.seek(-10, os.SEEK_END)
            print("tail", f.read().hex())
        # buffered text-free readinto and unbuffered reads
        with open(path, "rb", buffering=0) as f:
            for off, n in spec[:5]:
                f.seek(off)
                buf = bytearray(n)
                got = f.readinto(buf)
                print("readinto", off, got, hashlib.sha256(bytes(buf[:got])).hexdigest())
    """,
    "mmap_read.py": r"""
        import hashlib, json, mmap, os, sys
        spec = json.loads(sys.argv[2])
        for rel in sys.argv[3:]:
            path = os.path.join(sys.argv[1], rel)
            with open(path, "rb") as f:
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                print(rel, len(m))
                for off, n in spec:
                    print(" ", off, n, hashlib.sha256(m[off:off + n]).hexdigest())
                print("  find", m.find(m[len(m) // 2:len(m) // 2 + 64]))
                print("  whole", hashlib.sha256(m).hexdigest())
                m.close()
                size = os.fstat(f.fileno()).st_size
                if size > 8 * mmap.ALLOCATIONGRANULARITY:
                    off = (size // 2) // mmap.ALLOCATIONGRANULARITY * mmap.ALLOCATIONGRANULARITY
                    m = mmap.mmap(f.fileno(), 3 * mmap.ALLOCATIONGRANULARITY + 5,
                                  access=mmap.ACCESS_READ, offset=off)
                    print("  offset-map", off, hashlib.sha256(m[:]).hexdigest())
                    m.close()
    """,
    "glob.py": r"""
        import sys
        from pathlib import Path
        root = Path(sys.argv[1])
        for p in sorted(root.glob("**/*")):
            print(repr((str(p.relative_to(root)), p.is_dir(), p.is_file(),
                        p.stat().st_size if p.is_file() else None)))
        print("rglob", sorted(str(p.relative_to(root)) for p in root.rglob("*.bin")))
        print("iterdir", sorted(p.name for p in root.iterdir()))
        print("glob-c", sorted(str(p.relative_to(root)) for p in root.glob("a/*/c/*")))
        print("read_text", (root / "a" / "b" / "c" / "d" / "leaf.txt").read_bytes().hex())
    """,
    "numpy_read.py": r"""
        import hashlib, os, sys
        import numpy as np
        root = sys.argv[1]
        h = lambda b: hashlib.sha256(b).hexdigest()
        a = np.fromfile(os.path.join(root, "arrays", "raw.f32"), dtype="<f4")
        print("fromfile", a.shape, a.dtype, h(a.tobytes()))
        b = np.fromfile(os.path.join(root, "arrays", "raw.f32"), dtype="<f4", count=1000,
                        offset=4000)
        print("fromfile-offset", b.shape, h(b.tobytes()))
        m = np.load(os.path.join(root, "arrays", "arr.npy"), mmap_mode="r")
        print("load-mmap", type(m).__name__, m.shape, m.dtype, h(m[700:900].tobytes()),
              h(m[-3:].tobytes()), h(np.ascontiguousarray(m).tobytes()))
        full = np.load(os.path.join(root, "arrays", "arr.npy"))
        print("load", full.shape, h(full.tobytes()))
        mm = np.memmap(os.path.join(root, "big", "huge-40m.bin"), dtype=np.uint8, mode="r")
        print("memmap", mm.shape, h(mm[12345678:12345678 + 100000].tobytes()),
              int(mm[-1]), int(mm[::4096].astype(np.uint64).sum()))
        raw = np.fromfile(os.path.join(root, "big", "three-3m.bin"), dtype=np.uint8)
        print("fromfile-3m", raw.shape, h(raw.tobytes()))
    """,
    # The data calls the design lists for lazily filled files, each on its own region of a
    # 40 MiB object so each one (probably) meets bytes that are not there yet.
    "datacalls.py": r"""
        import hashlib, mmap, os, sys, tempfile
        MiB = 1 << 20
        path, scratch = sys.argv[1], sys.argv[2]
        h = lambda b: hashlib.sha256(b).hexdigest()
        fd = os.open(path, os.O_RDONLY)
        size = os.fstat(fd).st_size
        print("fstat", size)
        def full(fn, n):
            out = b""
            while len(out) < n:
                b = fn(n - len(out), len(out))
                if not b:
                    break
                out += b
            return out
        os.lseek(fd, 2 * MiB + 17, os.SEEK_SET)
        print("lseek+read", h(full(lambda n, done: os.read(fd, n), MiB)))
        print("pread", h(full(lambda n, done: os.pread(fd, n, 37 * MiB + 5 + done), 300000)))
        os.lseek(fd, 9 * MiB + 3, os.SEEK_SET)
        bufs = [bytearray(4096), bytearray(100000), bytearray(1)]
        n = os.readv(fd, bufs)
        print("readv", n, h(b"".join(bufs)[:n]))
        bufs = [bytearray(70000), bytearray(33)]
        n = os.preadv(fd, bufs, 13 * MiB + 99)
        print("preadv", n, h(b"".join(bufs)[:n]))
        with tempfile.TemporaryFile() as t:
            off, want, got = 17 * MiB + 1, 500000, 0
            while got < want:
                k = os.sendfile(t.fileno(), fd, off + got, want - got)
                if k == 0:
                    break
                got += k
            t.seek(0)
            print("sendfile", got, h(t.read()))
        # (copy_file_range between file systems is EXDEV: scratch is on the source's.)
        with tempfile.TemporaryFile(dir=scratch) as t:
            off, want, got = 21 * MiB + 7, 400000, 0
            while got < want:
                k = os.copy_file_range(fd, t.fileno(), want - got, off + got)
                if k == 0:
                    break
                got += k
            t.seek(0)
            print("copy_file_range", got, h(t.read()))
        r, w = os.pipe()
        k = os.splice(fd, w, 60000, offset_src=25 * MiB + 3)
        os.close(w)
        data = b"".join(iter(lambda: os.read(r, 65536), b""))
        os.close(r)
        print("splice", k, h(data))
        m = mmap.mmap(fd, 2 * MiB, access=mmap.ACCESS_READ, offset=29 * MiB)
        print("mmap-offset", h(m[:]))
        m.close()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            d = full(lambda n, done: os.pread(fd, n, 33 * MiB + done), MiB)
            os.write(w, h(d).encode())
            os._exit(0)
        os.close(w)
        child = os.read(r, 100).decode()
        os.close(r)
        os.waitpid(pid, 0)
        print("fork-child-pread", child)
        with os.fdopen(os.dup(fd), "rb") as f:
            f.seek(39 * MiB)
            print("fdopen", h(f.read(MiB // 2)))
        fd2 = os.dup(fd)
        print("dup-pread", h(full(lambda n, done: os.pread(fd2, n, 5 * MiB + done), 123456)))
        os.close(fd2)
        print("tail", os.pread(fd, 100, size - 50).hex())
        print("eof", os.pread(fd, 100, size), os.pread(fd, 100, size + 12345))
        os.lseek(fd, 0, os.SEEK_SET)
        hh = hashlib.sha256()
        for chunk in iter(lambda: os.read(fd, 1 << 20), b""):
            hh.update(chunk)
        print("whole", hh.hexdigest())
        os.close(fd)
    """,
    "threads.py": r"""
        import hashlib, json, os, sys, threading
        path, spec = sys.argv[1], json.loads(sys.argv[2])
        shared = os.open(path, os.O_RDONLY)
        results = [None] * len(spec)
        barrier = threading.Barrier(len(spec))
        def work(i, off, n):
            fd = shared if i % 2 == 0 else os.open(path, os.O_RDONLY)
            barrier.wait()
            buf = b""
            while len(buf) < n:
                b = os.pread(fd, min(n - len(buf), 1 << 20), off + len(buf))
                if not b:
                    break
                buf += b
            results[i] = [off, len(buf), hashlib.sha256(buf).hexdigest()]
            if fd != shared:
                os.close(fd)
        threads = [threading.Thread(target=work, args=(i, off, n))
                   for i, (off, n) in enumerate(spec)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(json.dumps(results))
    """,
    "pool.py": r"""
        import hashlib, json, multiprocessing as mp, os, sys
        def sha(p):
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest(), os.getpid()
        def main():
            method, root = sys.argv[1], sys.argv[2]
            # The parent lists the whole tree before the workers start.
            files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs)
            ctx = mp.get_context(method)
            with ctx.Pool(4) as pool:
                res = pool.map(sha, files, chunksize=1)
            pids = {pid for _, pid in res}
            digests = {os.path.relpath(f, root): r[0] for f, r in zip(files, res)}
            print(json.dumps({"workers": len(pids) > 1,
                              "parent_not_worker": os.getpid() not in pids, "sha": digests},
                             sort_keys=True, ensure_ascii=False))
        if __name__ == "__main__":
            main()
    """,
    "subproc.py": r"""
        import hashlib, json, subprocess, sys
        out = {}
        for p in sys.argv[1:]:
            r = subprocess.run(["cat", p], capture_output=True, timeout=60)
            err = r.stderr.decode(errors="replace").splitlines()
            mine = [line for line in err if line.startswith("rwsplit[")]
            others = [line for line in err if not line.startswith("rwsplit[")]
            out[p] = [r.returncode, len(r.stdout), hashlib.sha256(r.stdout).hexdigest(),
                      others, sum("read summary: 1 files opened" in line for line in mine)]
        r = subprocess.run(["ls", sys.argv[1].rsplit("/", 1)[0]], capture_output=True, timeout=60)
        out["ls"] = [r.returncode, r.stdout.decode()]
        print(json.dumps(out, ensure_ascii=False))
    """,
    # Route errors: op name -> errno name ("OK" on success).
    "errors.py": r"""
        import errno, json, os, sys
        root = sys.argv[1]
        F = os.path.join(root, "a", "small 4k.bin")
        F2 = os.path.join(root, "one.bin")
        D = os.path.join(root, "a", "b", "c", "d")
        NEW = os.path.join(root, "new.bin")
        res = {}
        def probe(name, fn):
            try:
                r = fn()
                if isinstance(r, int) and not isinstance(r, bool) and name.startswith("open"):
                    os.close(r)
                if isinstance(r, bool):
                    res[name] = "TRUE" if r else "FALSE"
                else:
                    res[name] = "OK"
            except OSError as e:
                res[name] = errno.errorcode.get(e.errno, str(e.errno))
        def opened(fn):
            f = fn()
            f.close()
        probe("open_w", lambda: opened(lambda: open(F, "wb")))
        probe("open_a", lambda: opened(lambda: open(F, "ab")))
        probe("open_rplus", lambda: opened(lambda: open(F, "r+b")))
        probe("open_x_new", lambda: opened(lambda: open(NEW, "xb")))
        probe("open_w_new", lambda: opened(lambda: open(NEW, "wb")))
        probe("open_O_WRONLY", lambda: os.open(F, os.O_WRONLY))
        probe("open_O_RDWR", lambda: os.open(F, os.O_RDWR))
        probe("open_O_WRONLY_O_TRUNC", lambda: os.open(F, os.O_WRONLY | os.O_TRUNC))
        probe("open_O_RDONLY_O_TRUNC", lambda: os.open(F, os.O_RDONLY | os.O_TRUNC))
        probe("open_O_CREAT_new", lambda: os.open(NEW, os.O_WRONLY | os.O_CREAT, 0o644))
        probe("open_O_CREAT_RDONLY_new", lambda: os.open(NEW, os.O_RDONLY | os.O_CREAT, 0o644))
        probe("open_O_CREAT_O_EXCL_new",
              lambda: os.open(NEW, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        probe("unlink", lambda: os.unlink(F))
        probe("remove", lambda: os.remove(F2))
        probe("rename", lambda: os.rename(F, os.path.join(root, "renamed.bin")))
        probe("rename_dir", lambda: os.rename(D, os.path.join(root, "renamed-dir")))
        probe("replace", lambda: os.replace(F, F2))
        probe("mkdir", lambda: os.mkdir(os.path.join(root, "newdir")))
        probe("mkdir_nested", lambda: os.mkdir(os.path.join(root, "a", "b", "newdir")))
        probe("mkdir_existing_root", lambda: os.mkdir(root))
        probe("mkdir_existing_dir", lambda: os.mkdir(D))
        probe("mkdir_existing_file", lambda: os.mkdir(F))
        probe("mkdir_missing_parent", lambda: os.mkdir(os.path.join(root, "no", "newdir")))
        probe("makedirs_exist_ok", lambda: os.makedirs(D, exist_ok=True))
        probe("rmdir", lambda: os.rmdir(D))
        probe("truncate", lambda: os.truncate(F, 0))
        probe("chmod", lambda: os.chmod(F, 0o644))
        probe("chmod_dir", lambda: os.chmod(D, 0o755))
        probe("chown", lambda: os.chown(F, os.getuid(), os.getgid()))
        probe("utime_now", lambda: os.utime(F))
        probe("utime_times", lambda: os.utime(F, (1, 2)))
        probe("utime_dir", lambda: os.utime(D, ns=(1, 2)))
        probe("symlink_into", lambda: os.symlink("/tmp", os.path.join(root, "sym")))
        probe("access_W_OK", lambda: os.access(F, os.W_OK))
        # missing objects and prefixes
        probe("open_missing", lambda: opened(lambda: open(os.path.join(root, "missing.bin"), "rb")))
        probe("os_open_missing",
              lambda: os.open(os.path.join(root, "a", "b", "c", "nope"), os.O_RDONLY))
        probe("stat_missing", lambda: os.stat(os.path.join(root, "missing.bin")))
        probe("lstat_missing", lambda: os.lstat(os.path.join(root, "no", "such", "deep", "x")))
        probe("stat_name_prefix", lambda: os.stat(os.path.join(root, "a", "small")))
        probe("listdir_missing", lambda: os.listdir(os.path.join(root, "nodir")))
        probe("access_missing", lambda: os.access(os.path.join(root, "missing.bin"), os.F_OK))
        probe("stat_under_file", lambda: os.stat(os.path.join(F2, "x")))
        probe("listdir_file", lambda: os.listdir(F2))
        probe("open_O_DIRECTORY_file", lambda: os.open(F2, os.O_RDONLY | os.O_DIRECTORY))
        # directories
        def read_dir_fd():
            fd = os.open(D, os.O_RDONLY)
            try:
                os.read(fd, 10)
            finally:
                os.close(fd)
        probe("read_dir_fd", read_dir_fd)
        probe("open_dir_py", lambda: opened(lambda: open(D, "rb")))
        probe("open_root_py", lambda: opened(lambda: open(root, "rb")))
        def dir_fd_listing():
            fd = os.open(os.path.join(root, "a"), os.O_RDONLY | os.O_DIRECTORY)
            try:
                with os.scandir(fd) as it:
                    names = sorted((e.name, e.is_dir()) for e in it)
                listed = sorted(os.listdir(fd))
                assert [n for n, _ in names] == listed, (names, listed)
                # openat / fstatat relative to a routed directory fd
                st = os.stat("small 4k.bin", dir_fd=fd)
                f = os.open("small 4k.bin", os.O_RDONLY, dir_fd=fd)
                data = b"".join(iter(lambda: os.read(f, 65536), b""))
                os.close(f)
                f = os.open("b/deep-110k.dat", os.O_RDONLY, dir_fd=fd)
                data2 = b"".join(iter(lambda: os.read(f, 65536), b""))
                os.close(f)
                import hashlib
                res["dir_fd_listing"] = repr(names)
                res["dir_fd_openat"] = [st.st_size, len(data), hashlib.sha256(data).hexdigest(),
                                        len(data2), hashlib.sha256(data2).hexdigest()]
            finally:
                os.close(fd)
        probe("dir_fd", dir_fd_listing)
        print(json.dumps(res, sort_keys=True))
    """,
    # The same operations on a scratch directory outside every route: used to prove that
    # pass-through gives identical results and errno with and without rwsplit.
    "passthrough.py": r"""
        import ctypes, errno, hashlib, json, mmap, os, stat, sys
        S = sys.argv[1]
        os.makedirs(S)
        out = []
        def probe(name, fn):
            try:
                r = fn()
                out.append((name, "OK", r))
            except OSError as e:
                out.append((name, errno.errorcode.get(e.errno, str(e.errno)), None))
        f = os.path.join(S, "f.txt")
        with open(f, "wb") as fh:
            fh.write(b"hello pass-through\n" * 1000)
        os.mkdir(os.path.join(S, "sub"))
        with open(os.path.join(S, "sub", "g.bin"), "wb") as fh:
            fh.write(bytes(range(256)) * 64)
        probe("read", lambda: hashlib.sha256(open(f, "rb").read()).hexdigest())
        probe("pread", lambda: os.pread(os.open(f, os.O_RDONLY), 10, 5).hex())
        probe("stat", lambda: (os.stat(f).st_size, stat.S_IFMT(os.stat(f).st_mode),
                               oct(stat.S_IMODE(os.stat(f).st_mode))))
        probe("stat_dir", lambda: (stat.S_ISDIR(os.stat(S).st_mode), os.stat(S).st_nlink))
        probe("listdir", lambda: sorted(os.listdir(S)))
        probe("scandir", lambda: sorted((e.name, e.is_dir(), e.is_file()) for e in os.scandir(S)))
        probe("walk", lambda: [(os.path.relpath(d, S), sorted(ds), sorted(fs))
                               for d, ds, fs in os.walk(S)])
        probe("open_missing", lambda: open(os.path.join(S, "missing")))
        probe("stat_missing", lambda: os.stat(os.path.join(S, "missing")))
        probe("stat_enotdir", lambda: os.stat(os.path.join(f, "x")))
        probe("listdir_enotdir", lambda: os.listdir(f))
        probe("open_O_DIRECTORY_file", lambda: os.open(f, os.O_RDONLY | os.O_DIRECTORY) and None)
        def read_dir():
            fd = os.open(S, os.O_RDONLY)
            try:
                return os.read(fd, 1)
            finally:
                os.close(fd)
        probe("read_dir", read_dir)
        probe("open_dir_py", lambda: open(S, "rb"))
        probe("open_dir_w", lambda: open(S, "wb"))
        probe("mkdir_exists", lambda: os.mkdir(os.path.join(S, "sub")))
        probe("rmdir_notempty", lambda: os.rmdir(os.path.join(S, "sub")))
        J = lambda *p: os.path.join(S, *p)
        EXCL = os.O_CREAT | os.O_EXCL | os.O_WRONLY
        probe("excl_twice", lambda: [os.close(os.open(J("x"), EXCL)) for _ in range(2)])
        probe("rename", lambda: (os.rename(J("x"), J("y")), sorted(os.listdir(S))))
        probe("unlink_missing", lambda: os.unlink(os.path.join(S, "x")))
        probe("truncate", lambda: (os.truncate(f, 7), os.stat(f).st_size))
        probe("chmod", lambda: (os.chmod(f, 0o600), oct(stat.S_IMODE(os.stat(f).st_mode))))
        probe("utime", lambda: (os.utime(f, (1, 2)), os.stat(f).st_mtime))
        probe("symlink", lambda: (os.symlink("f.txt", J("l")), os.readlink(J("l")),
                                  stat.S_ISLNK(os.lstat(J("l")).st_mode)))
        probe("access", lambda: (os.access(f, os.R_OK), os.access(J("missing"), os.F_OK)))
        def mm():
            with open(os.path.join(S, "sub", "g.bin"), "rb") as fh:
                m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                return hashlib.sha256(m[100:5000]).hexdigest()
        probe("mmap", mm)
        probe("unlink", lambda: (os.unlink(os.path.join(S, "y")), sorted(os.listdir(S))))
        probe("rmdir", lambda: (os.unlink(J("sub", "g.bin")), os.rmdir(J("sub")),
                                sorted(os.listdir(S))))
        # errno is left alone by successful libc calls (ctypes swaps errno around each call)
        libc = ctypes.CDLL(None, use_errno=True)
        def keep(name, call):
            ctypes.set_errno(4242)
            rc = call()
            out.append(("errno-after-" + name, rc, ctypes.get_errno()))
        buf = ctypes.create_string_buffer(1024)
        keep("access", lambda: libc.access(f.encode(), 0))
        keep("stat", lambda: libc.stat(f.encode(), buf))
        keep("open", lambda: int(libc.open(f.encode(), 0) >= 0))
        keep("opendir", lambda: int(bool(libc.opendir(S.encode()))))
        keep("access-missing", lambda: libc.access(os.path.join(S, "missing").encode(), 0))
        for item in out:
            print(repr(item))
    """,
}


# -- fixtures --------------------------------------------------------------------------------


@dataclass
class Tree:
    bucket: str
    root: Path                 # the local copy
    files: dict                # rel -> size
    dirs: list                 # rel dirs ("" is the root), sorted
    sha: dict                  # rel -> sha256
    many_root: Path
    many_sha: dict
    wide_root: Path


def _chmod_tree(root, file_mode, dir_mode):
    for dp, dns, fns in os.walk(root):
        for fn in fns:
            os.chmod(os.path.join(dp, fn), file_mode)
        os.chmod(dp, dir_mode)


@pytest.fixture(scope="module")
def tree(mc, boto, tmp_path_factory):
    """The test tree: uploaded with mc to s3://<bucket>/data/ (and many/) and kept locally."""
    base = tmp_path_factory.mktemp("read-routes")
    root = base / "tree"
    files = dict(TREE)
    for rel, size in TREE.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
    # A zero-filled placeholder must never pass for the real one byte.
    (root / "one.bin").write_bytes(b"\x5a")
    npy = make_npy(NPY_SHAPE, os.urandom(4 * NPY_SHAPE[0] * NPY_SHAPE[1]))
    (root / "arrays" / "arr.npy").write_bytes(npy)
    files["arrays/arr.npy"] = len(npy)
    many_root = base / "many"
    many_root.mkdir()
    for rel, size in MANY.items():
        (many_root / rel).write_bytes(os.urandom(size))

    wide_root = base / "wide"
    for i in range(WIDE_FILES):
        (wide_root / "flat").mkdir(parents=True, exist_ok=True)
        (wide_root / "flat" / f"f{i:05d}.txt").write_bytes(f"{i}\n".encode() * (i % 7))
    for i in range(WIDE_DIRS):
        d = wide_root / "flat" / f"sub{i:03d}"
        d.mkdir()
        (d / "x.txt").write_bytes(b"x" * i)

    bucket = random_bucket_name("rd")
    mc.mb(bucket)
    try:
        mc.run("cp", "--recursive", "--quiet", f"{root}/", mc.target(f"{bucket}/data/"),
               timeout=300)
        mc.run("cp", "--recursive", "--quiet", f"{many_root}/", mc.target(f"{bucket}/many/"),
               timeout=300)
        mc.run("cp", "--recursive", "--quiet", f"{wide_root}/", mc.target(f"{bucket}/wide/"),
               timeout=300)
        # The keys must be exactly the relative paths (no encoding games by the uploader).
        keys = {}
        for page in boto.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                keys[obj["Key"]] = obj["Size"]
        expected = {f"data/{k}": v for k, v in files.items()}
        expected.update({f"many/{k}": v for k, v in MANY.items()})
        assert {k: v for k, v in keys.items() if not k.startswith("wide/")} == expected
        assert len([k for k in keys if k.startswith("wide/")]) == WIDE_FILES + WIDE_DIRS

        sha = {rel: sha256_file(root / rel) for rel in files}
        many_sha = {rel: sha256_file(many_root / rel) for rel in MANY}
        dirs = sorted({""} | {str(Path(rel).parent) for rel in files if "/" in rel}
                      | {str(p) for rel in files for p in Path(rel).parents if str(p) != "."})
        # What a read route shows: files r--r--r--, directories r-xr-xr-x.
        _chmod_tree(root, 0o444, 0o555)
        yield Tree(bucket, root, files, dirs, sha, many_root, many_sha, wide_root)
    finally:
        _chmod_tree(root, 0o644, 0o755)
        mc.rb(bucket)


@pytest.fixture
def make_route(minio, build, tree, tmp_path):
    """make_route(prefix="data/", **options) -> Route with its own local path and cache dir."""
    build.require(build.lib)
    made = []

    def make(prefix="data/", glob=None, **options):
        """glob: [global] keys beside cache_dir."""
        tag = secrets.token_hex(5)
        local = f"/mnt/rwsplit-it-{tag}/data"
        assert not os.path.exists(os.path.dirname(local))
        cache_dir = Path(f"/dev/shm/rwsplit-it-{tag}")
        opts = dict(ROUTE_DEFAULTS)
        opts.update(options)
        conf = tmp_path / f"rwsplit-{tag}.conf"
        conf.write_text(f"[global]\ncache_dir = {cache_dir}\n" + "".join(
            f"{k} = {v}\n" for k, v in (glob or {}).items()) + "\n" + minio.config_text(
            routes=[("read", local, f"s3://{tree.bucket}/{prefix}", opts)]))
        route = Route(minio, build, tree.bucket, prefix, conf, local, cache_dir, opts)
        made.append(route)
        return route

    yield make
    for route in made:
        shutil.rmtree(route.cache_dir, ignore_errors=True)


@pytest.fixture
def route(make_route):
    return make_route()


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    d = tmp_path_factory.mktemp("rd-scripts")
    for name, text in SCRIPTS.items():
        (d / name).write_text(textwrap.dedent(text).lstrip())
    return d


def all_paths(tree):
    """Every file and directory, relative, sorted ("." is the root)."""
    return sorted(["."] + [d for d in tree.dirs if d] + list(tree.files))


# -- coreutils and friends -------------------------------------------------------------------


def test_cat_every_file(tree, route):
    """cat of each file, and of all of them in one invocation, is byte-identical."""
    rels = sorted(tree.files)
    for rel in rels:
        res = expect_ok(route.run(["cat", route.path(rel)]))
        assert len(res.stdout) == tree.files[rel], rel
        assert sha256_bytes(res.stdout) == tree.sha[rel], rel
    same(tree.root, route, lambda root: ["cat", *[f"{root}/{rel}" for rel in reversed(rels)]])


def test_cp_r_then_diff(tree, route, tmp_path):
    """cp -r of the route root (started with `rwsplit run`), then diff -r against the local
    copy, without rwsplit."""
    dest = tmp_path / "copy"
    res = route.run(["cp", "-r", route.local, dest], via_cli=True)
    expect_ok(res)
    diff = run_local(["diff", "-r", dest, tree.root])
    assert diff.returncode == 0, diff.describe()
    # cp also keeps the modes it saw.
    for rel in tree.files:
        assert stat.S_IMODE(os.stat(dest / rel).st_mode) == 0o444, rel
    run_local(["chmod", "-R", "u+w", dest])


def test_sha256sum_every_file(tree, route):
    same(tree.root, route, lambda root: ["sh", "-c", 'find "$1" -type f -print0 | sort -z '
                                    '| xargs -0 sha256sum', "sh", root])
    _, rt = same(tree.root, route, lambda root: ["sha256sum", *[f"{root}/{rel}"
                                                           for rel in sorted(tree.files)]])
    for line in rt.stdout.decode().splitlines():
        digest, name = line.split("  ", 1)
        assert tree.sha[name[len(route.local) + 1:]] == digest


def test_find(tree, route):
    same(tree.root, route, lambda root: ["sh", "-c", 'find "$1" -type f | sort', "sh", root])
    same(tree.root, route, lambda root: ["sh", "-c", 'find "$1" -type d | sort', "sh", root])
    same(tree.root, route, lambda root: ["sh", "-c", 'find "$1" -printf "%y %s %m %P\\n" | sort',
                                    "sh", root])
    same(tree.root, route, lambda root: ["sh", "-c", 'find "$1" -name "*.bin" -size +1k | sort',
                                    "sh", root])


def _ls_fields(out):
    """From `ls -l --time-style=+X` output: (mode, size, name) per entry, headers kept,
    "total" lines (block counts) dropped."""
    rows = []
    for line in out.decode().splitlines():
        if not line or line.startswith("total "):
            continue
        parts = line.split(None, 6)
        if len(parts) == 7 and parts[5] == "X":
            rows.append((parts[0], parts[4], parts[6]))
        else:
            rows.append((line,))
    return rows


def test_ls(tree, route):
    """ls -lAR of the root and ls -la of subdirectories: names, sizes, types and modes (not
    dates, owners, or link counts: see test_directory_link_counts) match, and every entry is
    r--r--r-- / r-xr-xr-x."""
    for make_args in (
        lambda root: ["ls", "-lAR", "--time-style=+X", root],
        lambda root: ["ls", "-la", "--time-style=+X", f"{root}/a"],
        lambda root: ["ls", "-la", "--time-style=+X", f"{root}/a/b/c"],
        lambda root: ["ls", "-ld", "--time-style=+X", root, f"{root}/big", f"{root}/{HUGE}"],
    ):
        loc = expect_ok(run_local(make_args(tree.root)))
        rt = expect_ok(route.run(make_args(route.local)))
        lrows = _ls_fields(norm(loc.stdout, tree.root))
        rrows = _ls_fields(norm(rt.stdout, route.local))
        assert rrows == lrows, f"\nlocal:  {lrows}\nrouted: {rrows}"
        for row in rrows:
            if len(row) == 3:
                assert row[0] in ("-r--r--r--", "dr-xr-xr-x"), row
    plain = same(tree.root, route,
                 lambda root: ["ls", root, f"{root}/a/b/c", f"{root}/ünï dir"])[1]
    assert "ünï dir".encode() in plain.stdout


def test_stat_command(tree, route):
    paths = all_paths(tree)
    same(tree.root, route, lambda root: ["stat", "-c", "%s %F %a %n",
                                    *[root if p == "." else f"{root}/{p}" for p in paths]])
    same(tree.root, route, lambda root: ["stat", "-L", "-c", "%s %F", f"{root}/{HUGE}",
                                    f"{root}/a/b/c/d/"])


def test_du(tree, route):
    # /tmp is ext4: a small directory is 4096 bytes there, which is also what a read route
    # reports for directories, so the totals match exactly.
    same(tree.root, route, lambda root: ["du", "-sb", root])
    same(tree.root, route, lambda root: ["sh", "-c", 'du -ab "$1" | sort -k2', "sh", root])
    same(tree.root, route, lambda root: ["du", "-sb", f"{root}/big", f"{root}/a"])


def test_tar(tree, route, tmp_path):
    same(tree.root, route, lambda root: ["sh", "-c",
                                    'tar -c --sort=name -C "$1" -f - . | tar -t -f -',
                                    "sh", root])
    # Content too: extract the routed tar (without rwsplit) and compare with the local tree.
    tarball = tmp_path / "t.tar"
    expect_ok(route.run(["tar", "-c", "--sort=name", "-C", route.local, "-f", tarball, "."]))
    out = tmp_path / "x"
    out.mkdir()
    expect_ok(run_local(["tar", "-x", "-f", tarball, "-C", out]))
    diff = run_local(["diff", "-r", out, tree.root])
    assert diff.returncode == 0, diff.describe()
    run_local(["chmod", "-R", "u+w", out])


@pytest.mark.parametrize("rel,bs,skip,count", [
    (HUGE, 4096, 0, 1),
    (HUGE, 4096, 2559, 3),
    (HUGE, 4096, 5000, 100),
    (HUGE, 4096, 10238, 5),        # runs past the end: 2 blocks
    (HUGE, 4096, 20000, 1),        # entirely past the end: nothing
    (HUGE, 1 << 20, 33, 2),
    (THREE, 4096, 700, 11),
    ("a/b/deep-110k.dat", 4096, 25, 4),
    ("one.bin", 4096, 0, 1),
])
def test_dd_skip(tree, route, rel, bs, skip, count):
    _, rt = same(tree.root, route, lambda root: ["dd", f"if={root}/{rel}", f"bs={bs}",
                                            f"skip={skip}", f"count={count}", "status=none"])
    data = (tree.root / rel).read_bytes()[bs * skip:bs * (skip + count)]
    assert rt.stdout == data


def test_dd_skip_bytes(tree, route):
    same(tree.root, route, lambda root: ["dd", f"if={root}/{HUGE}", "bs=1000", "skip=12345677",
                                    "count=7", "iflag=skip_bytes,count_bytes", "status=none"])


def test_directory_listing_spans_pages(tree, make_route):
    """A directory of 1180 entries (more than one ListObjectsV2 page): ls, find, stat and
    reads see every one of them. (No directory sizes here: ext4 gives this directory more
    than 4096 bytes.)"""
    route = make_route(prefix="wide/")
    same(tree.wide_root, route, lambda root: [
        "sh", "-c", 'ls -A "$1/flat" | wc -l && ls "$1/flat" | md5sum && '
        'find "$1" -type f -printf "%s %P\\n" | sort | md5sum && '
        'find "$1" -type d -printf "%P\\n" | sort | md5sum && '
        'cat "$1/flat/f01149.txt" "$1/flat/sub029/x.txt" "$1/flat/f00000.txt"', "sh", root])


# -- Python ----------------------------------------------------------------------------------


def _random_spec(size, n, max_len, seed):
    rng = random.Random(seed)
    spec = [[0, 100], [size - 1, 10], [size - 4096, 8192], [size, 5], [size + 100, 1]]
    spec += [[rng.randrange(size), rng.randrange(1, max_len)] for _ in range(n)]
    rng.shuffle(spec)
    return spec


def test_python_seek_read_random_offsets(tree, route, scripts):
    spec = json.dumps(_random_spec(tree.files[HUGE], 60, 3 * MiB, RNG_SEED))
    same(tree.root, route, lambda root: py(scripts / "seek_read.py", f"{root}/{HUGE}", spec))
    spec = json.dumps(_random_spec(tree.files[THREE], 20, 300 * KiB, RNG_SEED + 1))
    same(tree.root, route, lambda root: py(scripts / "seek_read.py", f"{root}/{THREE}", spec))


def test_python_data_calls_on_lazy_file(tree, route, scripts, tmp_path):
    """read/pread/readv/preadv/sendfile/copy_file_range/splice/mmap/fork/fdopen/dup on a
    cold 40 MiB object that is being filled in the background."""
    # copy_file_range needs its target on the source's file system: the local copy is on
    # /tmp (ext4), the route's cache files on /dev/shm (tmpfs).
    shm_scratch = route.cache_dir.parent / f"{route.cache_dir.name}-scratch"
    shm_scratch.mkdir()
    try:
        _, rt = same(tree.root, route, lambda root: py(
            scripts / "datacalls.py", f"{root}/{HUGE}",
            shm_scratch if root == route.local else tmp_path))
    finally:
        shutil.rmtree(shm_scratch, ignore_errors=True)
    assert f"whole {tree.sha[HUGE]}".encode() in rt.stdout


# Reads argv[1] fully, then prints the names of the process's threads, one per line.
THREAD_NAMES = r"""
import glob, sys
open(sys.argv[1], "rb").read()
for p in sorted(glob.glob("/proc/self/task/*/comm")):
    print(open(p).read().strip())
"""


def test_threads_are_named(tree, route):
    """rwsplit's threads in the program carry names of their own (top -H, perf): reading a
    lazily filled object starts the fetch pool, whose threads are called rws-fetch."""
    res = expect_ok(route.run([sys.executable, "-c", THREAD_NAMES, route.path(HUGE)]))
    names = res.stdout.decode().split()
    # The program's own threads keep theirs: the main thread is still called like the program.
    assert "rws-fetch" in names and names[0] == Path(sys.executable).name[:15], names


def test_os_walk_and_fwalk(tree, route, scripts):
    same(tree.root, route, lambda root: py(scripts / "os_walk.py", root))


def test_os_scandir(tree, route, scripts):
    _, rt = same(tree.root, route, lambda root: py(scripts / "scandir.py", root))
    assert b"'empty.bin', True, False, False, 0, '0o100444'" in rt.stdout
    assert b"'big', False, True, False, 4096, '0o40555'" in rt.stdout


def test_os_stat(tree, route, scripts):
    same(tree.root, route, lambda root: py(scripts / "os_stat.py", root, *all_paths(tree)))


def test_mmap(tree, route, scripts):
    spec = [[0, 4096], [12345, 1], [MiB - 3, 10], [3 * MiB - 100, 100], [20 * MiB + 1, 5 * MiB],
            [40 * MiB - 7, 7], [40 * MiB, 10]]
    _, rt = same(tree.root, route, lambda root: py(scripts / "mmap_read.py", root, json.dumps(spec),
                                              HUGE, THREE, "a/b/deep-110k.dat"))
    assert f"whole {tree.sha[HUGE]}".encode() in rt.stdout
    assert f"whole {tree.sha[THREE]}".encode() in rt.stdout


def test_pathlib_glob(tree, route, scripts):
    same(tree.root, route, lambda root: py(scripts / "glob.py", root))


def test_numpy_fromfile_and_load_mmap(tree, route, scripts):
    try:
        import numpy  # noqa: F401  (is it there for the probe scripts' interpreter?)
    except ImportError:
        pytest.skip(f"numpy is not installed in {sys.executable}'s environment "
                    "(pip install numpy; it is not in tests/requirements.txt)")
    same(tree.root, route, lambda root: py(scripts / "numpy_read.py", root))


# -- errors ----------------------------------------------------------------------------------


EROFS_OPS = (
    "open_w", "open_a", "open_rplus", "open_x_new", "open_w_new", "open_O_WRONLY",
    "open_O_RDWR", "open_O_WRONLY_O_TRUNC", "open_O_RDONLY_O_TRUNC", "open_O_CREAT_new",
    "open_O_CREAT_RDONLY_new", "open_O_CREAT_O_EXCL_new", "unlink", "remove", "rename",
    "rename_dir", "replace", "mkdir", "mkdir_nested", "rmdir", "truncate", "chmod",
    "chmod_dir", "chown", "utime_now", "utime_times", "utime_dir", "symlink_into")


def _route_errors(route, scripts):
    """Runs errors.py on the route: {probe: errno name | "OK" | "TRUE"/"FALSE" | value}."""
    res = expect_ok(route.run(py(scripts / "errors.py", route.local)))
    return json.loads(res.stdout)


def _pick(got, names):
    return {name: got.get(name) for name in names}


def test_errors_erofs(tree, route, scripts, mc):
    """Every way of writing into a read route fails with EROFS, and the store is unchanged."""
    got = _route_errors(route, scripts)
    expected = {name: "EROFS" for name in EROFS_OPS}
    expected["access_W_OK"] = "FALSE"
    assert _pick(got, expected) == expected
    # Nothing was changed in the store (checked with mc, independently).
    keys = {e["key"]: e["size"] for e in mc.ls(f"{tree.bucket}/data/")}
    assert keys == tree.files


def test_errors_mkdir_lookup_first(route, scripts):
    """mkdir on a read route answers as on a read-only mount, where the name is looked up
    first: an existing name is EEXIST (fio and `mkdir -p` accept only that), a missing parent
    ENOENT; test_errors_erofs covers new names (EROFS)."""
    got = _route_errors(route, scripts)
    expected = {"mkdir_existing_root": "EEXIST", "mkdir_existing_dir": "EEXIST",
                "mkdir_existing_file": "EEXIST", "mkdir_missing_parent": "ENOENT",
                "makedirs_exist_ok": "OK"}
    assert _pick(got, expected) == expected


def test_errors_enoent(route, scripts):
    got = _route_errors(route, scripts)
    expected = {
        "open_missing": "ENOENT", "os_open_missing": "ENOENT", "stat_missing": "ENOENT",
        "lstat_missing": "ENOENT", "stat_name_prefix": "ENOENT", "listdir_missing": "ENOENT",
        "access_missing": "FALSE",
    }
    assert _pick(got, expected) == expected


def test_errors_enotdir(route, scripts):
    """A file used as a directory: ENOTDIR, as on any file system (not ENOENT)."""
    got = _route_errors(route, scripts)
    expected = {"stat_under_file": "ENOTDIR", "listdir_file": "ENOTDIR",
                "open_O_DIRECTORY_file": "ENOTDIR"}
    assert _pick(got, expected) == expected


def test_errors_directories(tree, route, scripts):
    """read() on a directory fd is EISDIR, Python's open(dir) raises IsADirectoryError, and an
    O_DIRECTORY fd lists (scandir(fd), listdir(fd)) and serves openat/fstatat relative to it."""
    got = _route_errors(route, scripts)
    local_a = sorted((e.name, e.is_dir()) for e in os.scandir(tree.root / "a"))
    data = (tree.root / "a" / "small 4k.bin").read_bytes()
    data2 = (tree.root / "a" / "b" / "deep-110k.dat").read_bytes()
    expected = {
        "read_dir_fd": "EISDIR", "open_dir_py": "EISDIR", "open_root_py": "EISDIR",
        "dir_fd": "OK",
        "dir_fd_listing": repr(local_a),
        "dir_fd_openat": [len(data), len(data), sha256_bytes(data), len(data2),
                          sha256_bytes(data2)],
    }
    assert _pick(got, expected) == expected


def test_fd_metadata_changes_refused(tree, route):
    """fchmod/fchown/futimens on an fd of a routed file: a read-only tree refuses them (EROFS)
    and the cached copy keeps its mode and mtime."""
    script = textwrap.dedent(r"""
        import errno, json, os, sys
        fd = os.open(sys.argv[1], os.O_RDONLY)
        before = os.fstat(fd)
        res = {}
        for name, fn in (("fchmod", lambda: os.fchmod(fd, 0o666)),
                         ("fchown", lambda: os.fchown(fd, os.getuid(), os.getgid())),
                         ("futimens", lambda: os.utime(fd, (1, 2))),
                         ("ftruncate", lambda: os.ftruncate(fd, 0)),
                         ("write", lambda: os.write(fd, b"x"))):
            try:
                fn()
                res[name] = "OK"
            except OSError as e:
                res[name] = errno.errorcode[e.errno]
        after = os.fstat(fd)
        res["mode_kept"] = after.st_mode == before.st_mode
        res["mtime_kept"] = after.st_mtime_ns == before.st_mtime_ns
        res["size_kept"] = after.st_size == before.st_size
        print(json.dumps(res, sort_keys=True))
    """)
    res = expect_ok(route.run([sys.executable, "-c", script, route.path("a/b/deep-110k.dat")]))
    got = json.loads(res.stdout)
    assert got == {"fchmod": "EROFS", "fchown": "EROFS", "futimens": "EROFS",
                   "ftruncate": "EINVAL", "write": "EBADF", "mode_kept": True,
                   "mtime_kept": True, "size_kept": True}


def test_errno_preserved_by_successful_calls(tree, route):
    """libc calls that succeed on routed paths leave errno alone (as libc does locally)."""
    script = textwrap.dedent(r"""
        import ctypes, os, sys
        root = sys.argv[1]
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(1024)
        f = os.path.join(root, "a", "small 4k.bin").encode()
        def keep(name, call):
            ctypes.set_errno(4242)
            rc = call()
            print(name, rc, ctypes.get_errno())
        keep("access", lambda: libc.access(f, 0))
        keep("stat", lambda: libc.stat(f, buf))
        keep("open", lambda: int(libc.open(f, 0) >= 0))
        keep("opendir", lambda: int(bool(libc.opendir(root.encode()))))
        keep("fopen", lambda: int(bool(libc.fopen(os.path.join(root, "one.bin").encode(), b"r"))))
        keep("access-missing", lambda: libc.access(os.path.join(root, "missing").encode(), 0))
    """)
    same(tree.root, route, lambda root: [sys.executable, "-c", script, root])


# -- processes and threads -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_pool(tree, route, scripts, method):
    res = expect_ok(route.run(py(scripts / "pool.py", method, route.local), timeout=120))
    got = json.loads(res.stdout)
    assert got["workers"] and got["parent_not_worker"]
    assert got["sha"] == tree.sha


def test_subprocess_cat_from_preloaded_python(tree, route, scripts):
    rels = [HUGE, THREE, "a/b/c/ünïcødé 文件.txt", "empty.bin"]
    res = expect_ok(route.run(py(scripts / "subproc.py", *[route.path(r) for r in rels])))
    got = json.loads(res.stdout)
    for rel in rels:
        # [status, size, sha256, stderr lines not rwsplit's, summary lines of rwsplit]
        assert got[route.path(rel)] == [0, tree.files[rel], tree.sha[rel], [], 1], rel
    assert got["ls"] == [0, "huge-40m.bin\nthree-3m.bin\n"]


def test_subprocess_children_are_routed(tree, route, tmp_path):
    """Children of a preloaded program load rwsplit too: each cat appends its own summary to
    RWSPLIT_LOG_FILE."""
    log = tmp_path / "rwsplit.log"
    script = ("import subprocess, sys\n"
              "for p in sys.argv[1:]:\n"
              "    subprocess.run(['cat', p], check=True, stdout=subprocess.DEVNULL)\n")
    expect_ok(route.run([sys.executable, "-c", script, route.path(THREE), route.path(HUGE)],
                        extra_env={"RWSPLIT_LOG_FILE": str(log)}))
    text = log.read_bytes()
    res = Result([], 0, b"", text, 0)
    # (The Python parent never touched the route itself, so it prints no summary.)
    assert [s["opened"] for s in res.summaries()] == [1, 1], text.decode(errors="replace")


def test_threads_pread_same_lazy_file(tree, route, scripts):
    size = tree.files[HUGE]
    spec = [[i * 5 * MiB + 4097 * i, 3 * MiB + i] for i in range(8)]
    spec[7] = [size - 2 * MiB, 3 * MiB]       # runs past the end
    res = expect_ok(route.run(py(scripts / "threads.py", route.path(HUGE), json.dumps(spec))))
    data = (tree.root / HUGE).read_bytes()
    expected = [[off, len(data[off:off + n]), sha256_bytes(data[off:off + n])]
                for off, n in spec]
    assert json.loads(res.stdout) == expected


def test_subprocess_cwd_leaves_parent_cwd_alone(tree, route):
    """subprocess's cwd= runs chdir in a vfork child that shares the parent's memory: the
    child must land in the route while the parent's own working directory stays put."""
    script = textwrap.dedent(r"""
        import os, subprocess, sys
        os.chdir("/tmp")
        for _ in range(3):
            r = subprocess.run(["pwd"], cwd=os.path.join(sys.argv[1], "a"),
                               capture_output=True, text=True)
            print(r.stdout.strip() == os.path.join(sys.argv[1], "a"), os.getcwd())
        r = subprocess.run(["cat", "a.txt"], cwd=sys.argv[1], capture_output=True)
        print(r.returncode, len(r.stdout))
    """)
    same(tree.root, route, lambda root: [sys.executable, "-c", script, root])


def test_cwd_inside_route(tree, route):
    """A working directory inside a route: relative paths in the process itself (os.chdir),
    and in programs started there (a shell's cd, subprocess's cwd=), see the same files as
    with a local working directory."""
    same(tree.root, route, lambda root: [
        "sh", "-c", 'cd "$1/a" && pwd && sha256sum "small 4k.bin" ./b/deep-110k.dat ../one.bin '
        '&& ls b && find . | sort && od -An -tx1 ../a.txt | head -2', "sh", root])
    script = textwrap.dedent(r"""
        import hashlib, os, subprocess, sys
        os.chdir(os.path.join(sys.argv[1], "a"))
        print(os.getcwd() == os.path.join(sys.argv[1], "a"))
        print(hashlib.sha256(open("small 4k.bin", "rb").read()).hexdigest())
        print(sorted(os.listdir("b")), sorted(os.listdir("..")))
        print(sorted((d, sorted(fs)) for d, _, fs in os.walk(".")))
        r = subprocess.run(["sha256sum", "b/c/d/leaf.txt", "../one.bin"], capture_output=True)
        print(r.returncode, r.stdout.decode(), "".join(l for l in r.stderr.decode().splitlines(True) if not l.startswith("rwsplit[")))
        r = subprocess.run(["ls", "-R"], cwd="b", capture_output=True)
        print(r.returncode, r.stdout.decode(), "".join(l for l in r.stderr.decode().splitlines(True) if not l.startswith("rwsplit[")))
    """)
    same(tree.root, route, lambda root: [sys.executable, "-c", script, root])


def test_directory_link_counts(tree, route):
    """A routed directory reports st_nlink 1 ("sub-directories not counted", as btrfs and
    many network file systems do; gnulib fts then skips its leaf optimization) whether or not
    it has been listed yet, so the answer never depends on what was read before."""
    script = textwrap.dedent(r"""
        import os, sys
        root = sys.argv[1]
        for rel in sys.argv[2:]:
            print(rel, os.stat(os.path.join(root, rel)).st_nlink)
        print("after walk")
        for _ in os.walk(root):
            pass
        for rel in sys.argv[2:]:
            print(rel, os.stat(os.path.join(root, rel)).st_nlink)
    """)
    dirs = [d or "." for d in tree.dirs]
    res = expect_ok(route.run([sys.executable, "-c", script, route.local, *dirs]))
    lines = res.stdout.decode().splitlines()
    counts = [line.split()[-1] for line in lines if line != "after walk"]
    assert counts and set(counts) == {"1"}, res.describe()


def test_fstat_of_filling_file_is_stable(tree, route):
    """fstat on a lazily filled fd reports the object's mtime (like stat of its path) and
    neither mtime nor ctime moves while the background fill writes: otherwise tar reports
    "file changed as we read it" and exits 1."""
    script = textwrap.dedent(r"""
        import os, sys
        path = sys.argv[1]
        fd = os.open(path, os.O_RDONLY)
        a, s = os.fstat(fd), os.stat(path)
        while os.read(fd, 1 << 20):
            pass
        b, s2 = os.fstat(fd), os.stat(path)
        print("size", a.st_size == b.st_size == s.st_size)
        print("fstat mtime stable", a.st_mtime_ns == b.st_mtime_ns)
        print("fstat ctime stable", a.st_ctime_ns == b.st_ctime_ns)
        print("stat mtime stable", s.st_mtime_ns == s2.st_mtime_ns)
        print("stat ctime stable", s.st_ctime_ns == s2.st_ctime_ns)
        print("fstat mtime == stat mtime", a.st_mtime_ns == s.st_mtime_ns)
    """)
    same(tree.root, route, lambda root: [sys.executable, "-c", script, f"{root}/{HUGE}"])


def test_exit_during_background_work(tree, make_route):
    """A process may exit while the background fill of a large object or the prefetch of a
    listing is still running: it must exit normally (no SIGSEGV/SIGBUS from worker threads
    racing libcrypto's atexit cleanup)."""
    deaths = []
    for _ in range(8):
        route = make_route()
        # dd opens the 40 MiB object (starting its fill), reads nothing (past the end), exits.
        for args in (["dd", f"if={route.path(HUGE)}", "bs=4096", "skip=20000", "count=1",
                      "status=none"],
                     ["cat", route.path("one.bin")]):
            res = route.run(args)
            if res.returncode != 0:
                deaths.append(f"{args[0]}: status {res.returncode} {res.stderr[-200:]!r}")
    assert not deaths, f"{len(deaths)} of 16 runs failed: {deaths}"


# -- cache -----------------------------------------------------------------------------------


def test_second_process_reads_from_cache(tree, route, scripts):
    first = expect_ok(route.run(py(scripts / "walk_read.py", route.local)))
    assert json.loads(first.stdout) == tree.sha
    [s1] = first.summaries() or [None]
    assert s1 is not None, first.describe()
    assert s1["opened"] == len(tree.files) and s1["gets"] > 0 and s1["lists"] > 0, s1

    second = expect_ok(route.run(py(scripts / "walk_read.py", route.local)))
    assert json.loads(second.stdout) == tree.sha
    [s2] = second.summaries() or [None]
    assert s2 is not None, second.describe()
    assert s2["gets"] == 0 and s2["lists"] == 0, second.stderr.decode()
    assert s2["opened"] == len(tree.files) and s2["from_cache"] == s2["opened"], s2
    assert s2["bytes_store"] == 0, s2

    # And a different program (sha256sum) right after: no request either.
    third = expect_ok(route.run(["sha256sum", *[route.path(r) for r in sorted(tree.files)]]))
    [s3] = third.summaries() or [None]
    assert s3 is not None and s3["gets"] == 0 and s3["lists"] == 0, third.stderr.decode()
    assert s3["opened"] == len(tree.files), s3


def test_summary_line_on_stderr_from_coreutils(route):
    """RWSPLIT_LOG=info: every process that touched a route prints its summary line on
    stderr at exit, coreutils included (their atexit handler closes fd 2 before library
    destructors run)."""
    res = expect_ok(route.run(["cat", route.path("one.bin")]))
    assert len(res.summaries()) == 1, res.describe()


def _obj_usage(route):
    """Bytes of memory held by files in the route's obj/ (allocated blocks: a lazily filled
    object is sparse until complete)."""
    total = 0
    for d in route.obj_dirs():
        for p in d.rglob("*"):
            if p.is_file():
                total += p.stat().st_blocks * 512
    return total


@pytest.mark.parametrize("agent", ["off", "on"])
def test_cache_size_counted_once_for_all_processes(tree, make_route, agent):
    """The cache's size is shared by every process through the route's `usage` file: the
    first process to add an object measures the cache (a scan), later processes add to the
    shared count without scanning, and the count is what obj/ holds. With the fetch agent
    the agent adds the objects (and its log is not the processes' stderr): the count must
    still be right."""
    route = make_route(prefix="many/", prefetch="off", glob={"agent": agent})
    names = sorted(MANY)
    first = expect_ok(route.run(["cat", route.path(names[0]), route.path(names[1])],
                                log="debug"))
    second = expect_ok(route.run(["cat", *[route.path(n) for n in names[2:]]], log="debug"))
    if agent == "off":
        assert first.stderr.count(b"scanned the cache") == 1, first.describe()
        assert b"scanned the cache" not in second.stderr, second.describe()
    assert sha256_bytes(second.stdout) == sha256_bytes(
        b"".join((tree.many_root / n).read_bytes() for n in names[2:]))
    [usage] = route.cache_dir.glob(f"u{os.getuid()}/*/usage")
    counted, valid = struct.unpack("<QI", usage.read_bytes()[:12])
    assert valid == 1 and counted == _obj_usage(route) == sum(MANY.values()), (
        counted, valid, _obj_usage(route))


def test_small_budget_reads_correctly(tree, make_route):
    """cache = 8MiB, smaller than the tree (and than its largest object): two concurrent
    readers still get every byte right."""
    route = make_route(cache="8MiB")
    rels = sorted(tree.files)
    for res in run_together([["sha256sum", *[route.path(r) for r in order]]
                             for order in (rels, rels[::-1])], route.env()):
        assert res.returncode == 0, res.describe()
        got = {}
        for line in res.stdout.decode().splitlines():
            digest, name = line.split("  ", 1)
            got[name[len(route.local) + 1:]] = digest
        assert got == tree.sha
        assert not proc.RWSPLIT_PROBLEM_RE.search(res.stderr), res.describe()
    # Slack: eviction runs when an object is added, so the total can exceed the budget by
    # the last object added, at most the largest object (40 MiB here).
    assert _obj_usage(route) <= 8 * MiB + max(tree.files.values()) + 64 * KiB


def test_object_larger_than_budget_reads_through_a_window(tree, make_route):
    """cache = 8MiB and a 40 MiB object read through fds (sequential os.read, random pread,
    8 threads): every byte is right, chunks are evicted while the file is open, and nothing
    of it stays in the cache dir (the windowed copy is private and unlinked)."""
    route = make_route(cache="8MiB")
    script = textwrap.dedent(r"""
        import hashlib, os, random, sys, threading
        path, want = sys.argv[1], open(sys.argv[2], "rb").read()
        fd = os.open(path, os.O_RDONLY)
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        print("sequential", h.hexdigest() == hashlib.sha256(want).hexdigest())
        rnd = random.Random(7)
        bad = []
        def reader(seed):
            r = random.Random(seed)
            for _ in range(40):
                off, n = r.randrange(len(want)), r.randrange(1, 1 << 20)
                if os.pread(fd, n, off) != want[off:off + n]:
                    bad.append(off)
        threads = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("random", not bad)
    """)
    res = expect_ok(route.run([sys.executable, "-c", script, route.path(HUGE),
                               str(tree.root / HUGE)]))
    assert res.stdout.decode().split() == ["sequential", "True", "random", "True"]
    [s] = res.summaries()
    assert s["evictions"] > 0, res.describe()
    assert _obj_usage(route) <= 64 * KiB


def test_small_budget_cache_stays_near_budget(tree, make_route, scripts):
    """26 MiB of 1-3 MiB objects through an 8 MiB cache, by two processes one after the
    other: everything reads correctly, evictions happen, and once they exit obj/ holds at
    most the budget plus the largest object (eviction runs when an object is added, so the
    object that pushed the total over the budget may still be there; the temporary and
    bookkeeping files are a few KiB)."""
    route = make_route(prefix="many/", cache="8MiB")
    for _ in range(2):
        res = expect_ok(route.run(py(scripts / "walk_read.py", route.local)))
        assert json.loads(res.stdout) == tree.many_sha
        [s] = res.summaries() or [None]
        assert s is not None and s["evictions"] > 0, res.describe()
        usage = _obj_usage(route)
        assert usage <= 8 * MiB + max(MANY.values()) + 64 * KiB, usage
    assert route.obj_dirs(), f"no obj/ under {route.cache_dir}"


def test_entries_read_twice_do_not_empty_the_cache(tree, build, make_route):
    """Linux's tmpfs was seen listing an entry twice in one pass over a directory that others
    renamed into and unlinked from. With a shim that lists every entry of obj/ twice, 1150
    small objects (4 KiB of memory each) through a 1 MiB cache: the cache still ends near
    its budget. Counting every entry twice, it was evicted to under half of it."""
    shim = build.require(build.root / "tests" / "libdup_readdir.so")
    route = make_route(prefix="wide/flat/", cache="1MiB", glob={"agent": "off"})
    names = [f"f{i:05d}.txt" for i in range(WIDE_FILES)]
    res = expect_ok(route.run(["cat", *[route.path(n) for n in names]], extra_env={
        "LD_PRELOAD": f"{build.lib} {shim}", "DUP_READDIR_SUFFIX": "/obj"}))
    assert res.stdout == b"".join((tree.wide_root / "flat" / n).read_bytes() for n in names)
    assert b"dup_readdir: repeating the entries of" in res.stderr, res.describe()
    [s] = res.summaries()
    assert s["evictions"] > 0, (s, res.stderr[-3000:])
    usage = _obj_usage(route)
    # The last scan leaves 90% of the budget; up to an eighth of it is added before the next.
    assert 0.75 * MiB <= usage <= MiB + MiB // 8 + 64 * KiB, usage


def _route_gets(route):
    """GETs of the route's node-wide counters (every process and the agent), as `rwsplit
    stats --json` reports them, run without the library."""
    env = {k: v for k, v in route.env().items() if k not in ("LD_PRELOAD", "RWSPLIT_CONFIG")}
    res = subprocess.run([str(route.build.rwsplit), "stats", "--json", "-c", str(route.conf)],
                         env=env, capture_output=True, timeout=RUN_TIMEOUT, check=True)
    [r] = json.loads(res.stdout)["routes"]
    return r["gets"]


def _epoch(route, names, want):
    """One pass of `cat` over names; returns the GETs it cost the node."""
    before = _route_gets(route)
    res = expect_ok(route.run(["cat", *[route.path(n) for n in names]]))
    assert res.stdout == b"".join(want[n] for n in names)
    return _route_gets(route) - before


@pytest.mark.parametrize("order", ["sequential", "shuffled"])
def test_epochs_larger_than_the_cache_still_hit_it(tree, make_route, order):
    """Plain LRU under an epoch four times the budget evicts every object before its next
    read: epoch 2 found nothing. Admission on probation (reader/rd_cache.c) keeps a resident
    set: from epoch 2 about budget / data set of the reads (~20% here; at least 15%) come
    from the cache, in listing order and shuffled, with the listing prefetch and the agent.
    The budget is only 246 pages, so the read-ahead is 4 files (the default 16 is 6.5% of
    it and takes from the resident set what it keeps unread: bench/epochs.py measures
    realistic sizes with the defaults). A small set read while the cache is full of the
    large one is cached from its third pass: a probationer read twice becomes resident."""
    flat = tree.wide_root / "flat"
    names = [f"f{i:05d}.txt" for i in range(WIDE_FILES) if i % 7]
    want = {n: (flat / n).read_bytes() for n in names}
    route = make_route(prefix="wide/flat/", cache=f"{len(names)}KiB",  # 4 KiB each: a quarter
                       prefetch_concurrency=4)
    rnd = random.Random(5)
    gets = []
    for _ in range(3):
        if order == "shuffled":
            rnd.shuffle(names)
        gets.append(_epoch(route, names, want))
    # (a few mistaken read-aheads of the shuffled order are evicted unread and fetched again)
    print("GETs per epoch", gets, "of", len(names))
    assert len(names) <= gets[0] <= 1.1 * len(names), gets
    for g in gets[1:]:
        assert g <= 0.85 * len(names), (gets, len(names))
    assert _obj_usage(route) <= len(names) * 4 * KiB // 4 + 64 * KiB
    small = [f"sub{i:03d}/x.txt" for i in range(1, 21)]
    want.update({n: b"x" * i for i, n in enumerate(small, 1)})
    again = [_epoch(route, small, want) for _ in range(3)]
    assert again[0] == len(small) and again[2] == 0, again


# -- prefetch = all --------------------------------------------------------------------------

# Stats one file of the route (its first use starts the warming), then waits until the cache
# says the warming is done: lists/all.done, the stamp the warming process leaves.
WARM_WAIT = r"""
import glob, os, sys, time
os.stat(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[3])
while not glob.glob(sys.argv[2] + "/u*/*/lists/all.done") and time.monotonic() < deadline:
    time.sleep(0.05)
print("done" if glob.glob(sys.argv[2] + "/u*/*/lists/all.done") else "not done")
"""


def test_prefetch_all_warms_once_per_cache(tree, make_route):
    """prefetch = all: the first process warms the whole route; a later process on the same
    cache neither lists the route again nor GETs anything, and reads every byte right."""
    route = make_route(prefix="many/", prefetch="all")
    res = expect_ok(route.run([sys.executable, "-c", WARM_WAIT, route.path("m00.bin"),
                               str(route.cache_dir), "30"]))
    assert res.stdout.decode().split() == ["done"], res.describe()
    [s] = res.summaries()
    assert s["prefetched"] == len(MANY), res.describe()
    names = sorted(MANY)
    res = expect_ok(route.run(["sha256sum", *[route.path(n) for n in names]]))
    got = {ln.split("  ", 1)[1][len(route.local) + 1:]: ln.split("  ", 1)[0]
           for ln in res.stdout.decode().splitlines()}
    assert got == tree.many_sha
    [s] = res.summaries()
    assert (s["gets"], s["lists"], s["from_cache"]) == (0, 0, len(MANY)), res.describe()


# Stats one file of the route, then waits until the warming stamp is newer than argv[2]'s
# modification time (a later warming finished).
REWARM_WAIT = r"""
import glob, os, sys, time
before = os.stat(sys.argv[2]).st_mtime_ns
os.stat(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[3])
while os.stat(sys.argv[2]).st_mtime_ns == before and time.monotonic() < deadline:
    time.sleep(0.05)
print("rewarmed" if os.stat(sys.argv[2]).st_mtime_ns != before else "not rewarmed")
"""


def test_prefetch_all_warms_again_after_listing_ttl(tree, make_route):
    """Once listing_ttl has passed since a warming finished, the next process warms the
    route again (the stamp only spares processes within the TTL)."""
    route = make_route(prefix="many/", prefetch="all", listing_ttl="2s")
    res = expect_ok(route.run([sys.executable, "-c", WARM_WAIT, route.path("m00.bin"),
                               str(route.cache_dir), "30"]))
    assert res.stdout.decode().split() == ["done"], res.describe()
    [stamp] = route.cache_dir.glob(f"u{os.getuid()}/*/lists/all.done")
    time.sleep(2.5)
    res = expect_ok(route.run([sys.executable, "-c", REWARM_WAIT, route.path("m01.bin"),
                               stamp, "15"], log="debug"))
    assert res.stdout.decode().split() == ["rewarmed"], res.describe()
    assert b"warming" in res.stderr, res.describe()


def test_prefetch_all_one_warmer_at_a_time(tree, make_route):
    """Four processes start on a cold cache at once: one of them lists the route for the
    warming (the others see its lock), and each object is fetched once in all."""
    route = make_route(prefix="many/", prefetch="all")
    summaries = []
    for res in run_together([[sys.executable, "-c", WARM_WAIT, route.path(f"m{i:02d}.bin"),
                              route.cache_dir, "30"] for i in range(4)], route.env()):
        assert res.returncode == 0 and res.stdout.decode().split() == ["done"], res.describe()
        assert not proc.RWSPLIT_PROBLEM_RE.search(res.stderr), res.describe()
        summaries += res.summaries()
    # Each process lists the directory it stats (shared through the cache: at most once
    # each) and at most one lists the whole route.
    assert sum(s["prefetched"] for s in summaries) == len(MANY), summaries
    warmers = [s for s in summaries if s["prefetched"]]
    assert len(warmers) == 1, summaries
    assert sum(s["lists"] for s in summaries) <= 2, summaries


# -- pass-through ----------------------------------------------------------------------------


def test_passthrough_identical(tree, route, scripts, tmp_path):
    """Non-routed opens/reads/stats/listings give the same results and errno with and without
    rwsplit (which has a read route configured), and rwsplit prints nothing."""
    loc = run_local(py(scripts / "passthrough.py", tmp_path / "plain"))
    assert loc.returncode == 0, loc.describe()
    rt = route.run(py(scripts / "passthrough.py", tmp_path / "preloaded"))
    assert rt.returncode == 0, rt.describe()
    assert rt.stdout == loc.stdout, f"\nlocal:  {loc.stdout.decode()}\nrouted: {rt.stdout.decode()}"
    assert rt.stderr == b"", rt.describe()
    # The same shell tools on non-routed paths.
    for args in (["ls", "-la", "--time-style=+X", tmp_path / "plain"],
                 ["stat", "-c", "%s %F %a", tmp_path / "plain" / "f.txt", "/etc/hostname"],
                 ["cat", "/nonexistent-rwsplit-file"],
                 ["ls", "/etc/hostname/x"]):
        a, b = run_local(args), route.run(args)
        assert (b.returncode, b.stdout, b.stderr) == (a.returncode, a.stdout, a.stderr), \
            b.describe()


def test_bad_config_exits_78(route, tmp_path):
    """Sanity of the activation used above: a config that does not load stops the program."""
    bad = tmp_path / "bad.conf"
    bad.write_text("[read /mnt/x]\nurl = s3://b/p/\nprefetch = sometimes\n")
    env = route.env(extra={"RWSPLIT_CONFIG": str(bad)})
    res = run(["true"], env)
    assert res.returncode == 78, res.describe()


def test_overwritten_object_is_fetched_again(tree, mc, make_route):
    """Cached data is keyed by the object's ETag: an object overwritten with different bytes of
    the same size (within the same second) is fetched again once its listing is refreshed."""
    route = make_route(prefix="rewrite/", listing_ttl="1s")
    key = f"{tree.bucket}/rewrite/same-size.bin"
    mc.put_bytes(key, b"A" * 4096)
    res = expect_ok(route.run(["cat", route.path("same-size.bin")]))
    assert res.stdout == b"A" * 4096
    mc.put_bytes(key, b"B" * 4096)
    time.sleep(1.5)  # the listing's TTL
    res = expect_ok(route.run(["cat", route.path("same-size.bin")]))
    assert res.stdout == b"B" * 4096, res.describe()


def test_stdio_fopen_freopen_fread(tree, route):
    """stdio opens bypass the open symbol: fopen, freopen and fdopen of routed paths through
    libc itself (ctypes), including an object still being filled in the background."""
    script = textwrap.dedent(r"""
        import ctypes, os, sys
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fopen.restype = libc.freopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.freopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
        libc.fread.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        def slurp(f, n):
            buf = ctypes.create_string_buffer(n + 1)
            got = libc.fread(buf, 1, n + 1, f)
            return buf.raw[:got]
        root, local = sys.argv[1], sys.argv[2]
        for rel in ["one.bin", "big/huge-40m.bin"]:
            want = open(os.path.join(local, rel), "rb").read()
            f = libc.fopen(os.path.join(root, rel).encode(), b"rb")
            print(rel, "fopen", bool(f) and slurp(f, len(want)) == want)
            g = libc.fopen(b"/dev/null", b"r")
            g = libc.freopen(os.path.join(root, rel).encode(), b"r", g)
            print(rel, "freopen", bool(g) and slurp(g, len(want)) == want)
            libc.fclose(f)
            libc.fclose(g)
        f = libc.fopen(os.path.join(root, "one.bin").encode(), b"w")
        print("fopen w", f is None, os.strerror(ctypes.get_errno()))
    """)
    res = expect_ok(route.run([sys.executable, "-c", script, route.local, str(tree.root)]))
    assert res.stdout.decode().split("\n")[:-1] == [
        "one.bin fopen True", "one.bin freopen True",
        "big/huge-40m.bin fopen True", "big/huge-40m.bin freopen True",
        "fopen w True Read-only file system"], res.describe()


def test_directory_markers_and_empty_segments(make_route, boto, tree, tmp_path):
    """Keys as the S3 console makes them, under their own prefix: "m1/" (a "Create folder"
    marker alone) and "m2/" with "m2/f.txt" beside it. ls, find and cat see what the same
    local tree shows: m1 an empty directory, m2 with its file; nothing that its parent lists
    gives ENOENT. (A key with an empty segment, "dd//b", is the same case: MinIO refuses to
    store one, so it is not tried here.)"""
    prefix = f"markers-{secrets.token_hex(4)}/"
    for key, body in (("m1/", b""), ("m2/", b""), ("m2/f.txt", b"file\n")):
        boto.put_object(Bucket=tree.bucket, Key=prefix + key, Body=body)
    route = make_route(prefix=prefix)
    local = tmp_path / "markers"
    (local / "m1").mkdir(parents=True)
    (local / "m2").mkdir()
    (local / "m2" / "f.txt").write_bytes(b"file\n")
    same(local, route, lambda root: ["sh", "-c", 'cd "$1" && ls -1 . m1 m2 && find . | sort '
                                     '&& cat m2/f.txt', "sh", root])


GONE_READER = r"""
import sys, time
t = time.monotonic()
try:
    with open(sys.argv[1], "rb") as f:
        n = 0
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            n += len(b)
    print("read", n)
except OSError as e:
    print("error", e.errno, round(time.monotonic() - t, 1))
"""


def test_object_gone_since_listed_fails_fast(make_route, boto, tree, tmp_path):
    """A 40 MiB object (5 chunks, filled in the background) is listed, then deleted before it
    is read: the reader gets EIO, soon, after at most one GET per chunk, not a filler that
    retries for ever."""
    prefix = f"gone-{secrets.token_hex(4)}/"
    key = prefix + "big.bin"
    boto.put_object(Bucket=tree.bucket, Key=key, Body=os.urandom(40 * MiB))
    route = make_route(prefix=prefix, whole_object_max="1MiB", glob={"agent": "off"})
    expect_ok(route.run(["ls", "-l", route.local]))
    boto.delete_object(Bucket=tree.bucket, Key=key)
    script = tmp_path / "gone.py"
    script.write_text(GONE_READER)
    res = route.run([sys.executable, str(script), route.path("big.bin")], log="debug")
    out = res.stdout.decode().split()
    assert res.returncode == 0 and out[:2] == ["error", str(errno.EIO)], res.describe()
    assert float(out[2]) < 10, res.describe()
    gets = re.findall(rb"debug: GET \S+big\.bin -> 404", res.stderr)
    assert 1 <= len(gets) <= 5 + 2, f"{len(gets)} GETs\n{res.describe()}"
