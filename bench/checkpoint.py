#!/usr/bin/env python3
"""Checkpoint-write benchmark (issue 4): how long a checkpoint save takes to return to the
training loop through an rwsplit write route, and how long until it is durable in the store,
next to local disk (with and without fsync) and tmpfs, native uploads of the same bytes
(boto3 upload_file, mc cp), the "SDK fallback" a training loop does today without rwsplit
(save to local disk, then upload before going on), and the FUSE mounts users pick instead
(s3fs-fuse with default options, rclone mount --vfs-cache-mode full).

    .tools/venv/bin/python bench/checkpoint.py [--size-mib 1024] [--files 200] [--seed 1]
        [--runs 3] [--alt-runs 1] [--quick] [--out bench/RESULTS.md] [--build build] [--no-warm]

Two checkpoint shapes, each saved by every row:
- *1 GiB file*: one file of --size-mib MiB (default 1024) of random bytes;
- *200 files 1–8 MiB*: a sharded checkpoint, --files files (default 200) of random bytes with
  sizes uniform in 1..8 MiB drawn from --seed (~900 MiB in all), saved into a new directory
  one file after the other by one process; the save is timed from the open of the first file
  to the close of the last.
--quick: 96 MiB and 16 files, for trying the script out.

Every timed save or upload is a fresh .tools/venv/bin/python process running
bench/checkpoint_child.py, which holds the checkpoint in memory before it starts, warms memory
(see checkpoint_child.warm_memory; --no-warm turns it off) and times itself. Rows:

| row | save returns (what the loop waits for) | durable (complete in the store) |
|---|---|---|
| local disk, local disk + fsync, tmpfs | open → close (+ os.fsync before close) | — |
| rwsplit write route | open → close | open → the child's exit (exit waits for the upload queue) |
| rwsplit write route + fsync | open → fsync (uploads) → close | the same: durable at close |
| SDK fallback | local save, then boto3 upload_file (for a directory: ThreadPoolExecutor(8) of upload_file); both | the same |
| boto3 upload_file | — | the SDK fallback's upload part, timed by itself (file in the page cache) |
| mc cp | — | the whole `mc cp` (`--recursive` for a directory) process |
| s3fs | open → close through the mount (close uploads) | the same: durable at close |
| rclone | open → close through the mount (close writes the local cache) | open → the first ListObjectsV2 (every 50 ms, after the child's exit) that shows every file complete |

One throw-away MinIO on 127.0.0.1 (tests/harness/minio.py), s3fs and rclone mounts of its
bucket (bench/common.py), all started and stopped here. Rounds interleave rows and shapes;
sync and SETTLE s of rest since the last large free (see SETTLE) come before every pass.
After every pass (untimed) the copy is checked and removed: rwsplit rows by listing (size and
ETag, i.e. the MD5s MinIO computed of what it received, against the source's for the route's
part layout; in the last round also a full GetObject sha256), no open multipart upload, an
empty spool, one `write summary` with 0 pending and 0 failed and no error/warn line, and the
requests the pass sent (RWSPLIT_LOG=debug: one line per request; the cost is a short line
per request, on the upload threads); other rows by file or object sizes. Writes its section
of --out (between <!-- checkpoint:begin --> and <!-- checkpoint:end -->) and
bench/results/checkpoint.json ("save returns") and checkpoint_durable.json ("durable").
"""

import argparse
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
                          PASS_TIMEOUT, VENV_PY, command_line, cpu_of, fs_type, host_facts,
                          lib_fact, load_average, log, machine_cpu, rclone_mount, release,
                          run_text, s3fs_mount, save_json, tool_facts, tool_reason)
from bench.results_md import replace_section  # noqa: E402
from tests.harness.checks import object_sha, spool_leftovers  # noqa: E402
from tests.harness.minio import MC_BIN, Mc, MinioServer  # noqa: E402

MiB = 1 << 20
SECTION = "checkpoint"
CHILD = REPO / "bench" / "checkpoint_child.py"
ROUTE = "/mnt/rwbench-ckpt/ckpt"    # the rwsplit write route (nothing exists there on disk)
BUCKET = "rwbench-ckpt"
ROUTE_PREFIX = "ckpt/"              # where the route's files land
NATIVE_PREFIX = "native/"           # where the native uploads and the SDK fallback land
# The route's upload settings: the defaults, written out so the report shows them. The drain
# timeout is below PASS_TIMEOUT so that a stuck upload is reported by the library at exit
# rather than cut short by our kill.
ROUTE_THRESHOLD, ROUTE_PART = 64 * MiB, 16 * MiB
ROUTE_OPTIONS = {
    "multipart_threshold": f"{ROUTE_THRESHOLD // MiB}MiB",
    "part_size": f"{ROUTE_PART // MiB}MiB",
    "upload_workers": 4,
    "part_concurrency": 4,
    "drain_timeout": "4m",
}
# Seconds between the last large free (the previous pass's exit and cleanup) and the next
# child. With free page reporting (virtio-balloon) the kernel hands free memory back to the
# host in cycles that start 2 s after a large free (a sixteenth of the free lists each, the
# most recently freed pages first); a cycle that fires while the next child saves would take
# the memory its warm-up just freed (checkpoint_child.warm_memory).
SETTLE = 2.5
WARM_FACTOR = 1.25                  # the warm-up's size over the checkpoint's (warm_bytes)
POLL_S = 0.05                       # rclone rows: ListObjectsV2 every 50 ms until durable
DURABLE_DEADLINE = 120              # seconds after the child's exit; later counts as failed
BOTO3 = "boto3 upload_file"
DESIGN_TARGET = ("a checkpoint save that returns to the training loop in ≤ 1.2× the time of "
                 "the same save to local disk")
TARGET = 1.2
SUMMARY_RE = re.compile(r"^rwsplit\[\d+\][^\n]*write summary: (?:\S+: )?(\d+) files uploaded "
                        r"\((\d+) bytes\), (\d+) pending, (\d+) failed", re.MULTILINE)
REQUEST_RE = re.compile(r"^rwsplit\[\d+\] debug: ([A-Z]+) (\S+) -> (\d+)", re.MULTILINE)
PROBLEM_RE = re.compile(r"^rwsplit\[\d+\] (error|warn)[^\n]*", re.MULTILINE)
STEPS = ("open_s", "write_s", "fsync_s", "close_s")


# -- the checkpoint -----------------------------------------------------------------------


@dataclass
class Member:
    """One file of a checkpoint: its size, sha256, and the ETag MinIO gives it when rwsplit
    uploads it with the route's threshold and part size."""
    name: str
    size: int
    sha256: str
    route_etag: str


@dataclass
class Shape:
    tag: str                        # "one" or "many": in file names and keys
    label: str                      # the chart's group
    src: Path                       # the file, or the directory of files
    is_dir: bool
    members: list

    @property
    def total(self):
        return sum(m.size for m in self.members)

    def dest(self, directory, stem):
        """Where a save of this shape goes: a file or a directory named after stem."""
        return Path(directory) / (stem if self.is_dir else f"{stem}.bin")

    def key(self, prefix, stem):
        """The object key (a file) or key prefix (a directory) for stem under prefix."""
        return f"{prefix}{stem}" + ("" if self.is_dir else ".bin")

    def objects(self, base):
        """{key: Member} a complete copy under base has."""
        if self.is_dir:
            return {f"{base}/{m.name}": m for m in self.members}
        return {base: self.members[0]}


def write_member(path, size):
    """size random bytes in path, written in the route's part size so the sha256, the whole
    MD5 and the MD5 of every part come from one pass."""
    sha, md5, parts = hashlib.sha256(), hashlib.md5(), []
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, ROUTE_PART))
            f.write(chunk)
            sha.update(chunk)
            md5.update(chunk)
            parts.append(hashlib.md5(chunk).digest())
            left -= len(chunk)
    # S3's multipart ETag: the MD5 of the parts' MD5s, then "-" and the number of parts.
    etag = (md5.hexdigest() if size < ROUTE_THRESHOLD else
            f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}")
    return Member(path.name, size, sha.hexdigest(), etag)


def make_shapes(src_dir, size_mib, nfiles, seed):
    one = src_dir / "checkpoint.bin"
    many = src_dir / "sharded"
    many.mkdir()
    rng = random.Random(seed)
    shards = [write_member(many / f"shard-{i:03d}.bin", rng.randint(MiB, 8 * MiB))
              for i in range(nfiles)]
    one_label = f"{size_mib // 1024} GiB file" if size_mib % 1024 == 0 else f"{size_mib} MiB file"
    return [Shape("one", one_label, one, False, [write_member(one, size_mib * MiB)]),
            Shape("many", f"{nfiles} files 1–8 MiB", many, True, shards)]


# -- the rows -----------------------------------------------------------------------------


@dataclass
class Pass:
    ok: bool
    note: str = ""
    returns_s: float = None         # what the training loop waits for
    durable_s: float = None         # until the checkpoint is complete in the store
    save_s: float = None            # the child's open -> close (of the first/last file)
    upload_s: float = None          # the upload (boto3: in the child; mc: process wall)
    exit_wait_s: float = None       # child's last stamp -> exit (teardown; rwsplit: drain)
    steps: dict = None              # the save's open_s, write_s, fsync_s, close_s
    summary: str = ""               # rwsplit's write summary line
    summary_counts: tuple = None    # its files, bytes, pending, failed
    requests: dict = None           # rwsplit: "PUT 200" -> n, from RWSPLIT_LOG=debug
    client_cpu: float = 0.0         # CPU seconds of the child (and the FUSE daemon)
    server_cpu: float = 0.0         # of MinIO
    other_cpu: float = 0.0          # the rest of the machine's busy CPU during the pass
    steal: float = 0.0


@dataclass
class Row:
    """One way of saving or uploading one shape. argv(run) is the command; path(run) is what it
    writes on a filesystem (local, tmpfs, a FUSE mount; None: nothing to remove there) and
    base(run) the key (prefix) it writes in the store (None: local rows). durable says how
    the time to durable is taken: None (local), "exit" (the child's exit), "close" (the
    save's close), "poll" (listing after the exit), "returns" (the loop's wait: the SDK
    fallback), "upload" (the process: mc)."""
    name: str
    shape: Shape
    where: str
    argv: object
    env: dict
    shown_env: dict
    path: object = None
    base: object = None
    durable: str = None
    returns: bool = True            # the row is a save the loop waits for (not a bare upload)
    rwsplit: bool = False
    spool: Path = None              # rwsplit rows: the route's spool, empty after each pass
    mount: object = None            # the FuseMount the row writes through
    self_timed: bool = True         # the child prints its times (not mc: its process wall)
    slow: bool = False              # a FUSE row: runs in the first --alt-runs rounds only
    passes: list = field(default_factory=list)


def child_argv(*args, warm=0, warm_dir=None):
    """The child's command line; warm: scratch bytes it writes in warm_dir (the filesystem its
    save goes to) before timing (checkpoint_child.warm_memory)."""
    return [str(VENV_PY), str(CHILD), *[str(a) for a in args],
            *(["--warm", str(warm), "--warm-dir", str(warm_dir)] if warm else [])]


def plain_env(server):
    """The children's environment without the library (whatever the caller had preloaded)."""
    return server.child_env({"LD_PRELOAD": None, "RWSPLIT_CONFIG": None, "RWSPLIT_LOG": None,
                             "RWSPLIT_LOG_FILE": None, "RWSPLIT_DISABLE": None})


@dataclass
class Setup:
    """What every row builder needs."""
    server: object
    mc: object
    dirs: dict                      # "local", "tmpfs", "spool" -> Path
    lib: Path
    conf: Path
    warm: bool
    mounts: dict                    # "s3fs" / "rclone" -> FuseMount (mounted) or a str: why not


def warm_bytes(st, shape):
    """What the child writes and unlinks before timing (checkpoint_child.warm_memory): the
    save's size and a quarter more. Measured here, 2x made a 1 GiB child spend ~4.5 s instead of
    ~1.5 s faulting memory in from the host, with the same save times."""
    return int(WARM_FACTOR * shape.total) if st.warm else 0


def local_rows(st, shape):
    warm = warm_bytes(st, shape)

    def row(name, tag, directory, fsync, where):
        dest = lambda run: shape.dest(directory, f"{tag}-{shape.tag}-{run}")  # noqa: E731
        return Row(name, shape, where,
                   argv=lambda run: child_argv("save", dest(run), "--src", shape.src,
                                               *(["--fsync"] if fsync else []), warm=warm,
                                               warm_dir=directory),
                   env=plain_env(st.server), shown_env={}, path=dest)

    local, shm = st.dirs["local"], st.dirs["tmpfs"]
    return [row("local disk", "plain", local, False, f"{local} ({fs_type(local)})"),
            row("local disk + fsync", "fsync", local, True,
                f"{local} ({fs_type(local)}), os.fsync before each close"),
            row("tmpfs (/dev/shm)", "plain", shm, False, f"{shm} ({fs_type(shm)})")]


def rwsplit_rows(st, shape):
    warm = warm_bytes(st, shape)
    spool = st.dirs["spool"]
    shown = {"LD_PRELOAD": st.lib, "RWSPLIT_CONFIG": st.conf, "RWSPLIT_LOG": "debug"}
    env = dict(plain_env(st.server), **{k: str(v) for k, v in shown.items()})

    def row(name, tag, fsync):
        stem = lambda run: f"{tag}-{shape.tag}-{run}"  # noqa: E731
        return Row(name, shape, f"write route {ROUTE} -> s3://{BUCKET}/{ROUTE_PREFIX}, "
                                f"spool {spool}",
                   argv=lambda run: child_argv("save", shape.dest(ROUTE, stem(run)), "--src",
                                               shape.src, *(["--fsync"] if fsync else []),
                                               warm=warm, warm_dir=spool.parent),
                   env=env, shown_env=shown,
                   base=lambda run: shape.key(ROUTE_PREFIX, stem(run)),
                   durable="close" if fsync else "exit", rwsplit=True, spool=spool)

    return [row("rwsplit write route", "plain", False),
            row("rwsplit write route + fsync", "fsync", True)]


def native_rows(st, shape):
    warm = warm_bytes(st, shape)
    local = st.dirs["local"]
    key = lambda how, run: shape.key(NATIVE_PREFIX, f"{how}-{shape.tag}-{run}")  # noqa: E731
    pool = " (ThreadPoolExecutor(8), one upload_file per file)" if shape.is_dir else ""
    fallback = Row(
        "SDK fallback: local save + boto3 upload_file", shape,
        f"{local}, then s3://{BUCKET}/{NATIVE_PREFIX}{pool}",
        argv=lambda run: child_argv("fallback", shape.dest(local, f"fallback-{shape.tag}-{run}"),
                                    "--src", shape.src, "--bucket", BUCKET,
                                    "--key", key("fallback", run), warm=warm, warm_dir=local),
        env=plain_env(st.server), shown_env={},
        path=lambda run: shape.dest(local, f"fallback-{shape.tag}-{run}"),
        base=lambda run: key("fallback", run), durable="returns")
    # mc cp --recursive DIR/ TARGET/ puts DIR's files under TARGET/.
    src = f"{shape.src}/" if shape.is_dir else str(shape.src)
    mc = Row(
        "mc cp", shape, f"{shape.src} -> s3://{BUCKET}/{NATIVE_PREFIX}",
        argv=lambda run: [str(MC_BIN), "--no-color", "cp", "--quiet",
                          *(["--recursive"] if shape.is_dir else []), src,
                          st.mc.target(f"{BUCKET}/{key('mc', run)}" +
                                       ("/" if shape.is_dir else ""))],
        env=st.mc.env(), shown_env={"MC_CONFIG_DIR": st.mc.config_dir},
        base=lambda run: key("mc", run), durable="upload", returns=False, self_timed=False)
    return [fallback, mc]


def fuse_rows(st, shape):
    """s3fs (close uploads: durable at close) and rclone (close writes its cache; durable when
    the store lists the files complete), each writing through its mount of the bucket."""
    warm = warm_bytes(st, shape)
    rows = []
    for tool, durable in (("s3fs", "close"), ("rclone", "poll")):
        m = st.mounts[tool]
        if isinstance(m, str):
            continue
        prefix = f"{tool}/"
        stem = lambda run, t=tool: f"{t}-{shape.tag}-{run}"  # noqa: E731
        dest = lambda run, m=m, p=prefix, s=stem: shape.dest(m.mnt / p, s(run))  # noqa: E731
        name = "s3fs, default options" if tool == "s3fs" else "rclone mount, vfs-cache full"
        rows.append(Row(
            name, shape, f"{m.mnt}/{prefix} -> s3://{BUCKET}/{prefix}",
            argv=lambda run, d=dest: child_argv("save", d(run), "--src", shape.src, warm=warm,
                                                warm_dir=st.dirs["local"]),
            env=plain_env(st.server), shown_env={}, path=dest,
            base=lambda run, p=prefix, s=stem: shape.key(p, s(run)), durable=durable,
            mount=m, slow=True))
    return rows


def all_rows(st, shape):
    return local_rows(st, shape) + rwsplit_rows(st, shape) + native_rows(st, shape) + \
        fuse_rows(st, shape)


# -- checks (untimed, after each pass) ----------------------------------------------------


def listing(s3, base, is_dir):
    """{key: (size, etag)} of the objects under base (directory markers left out)."""
    prefix = f"{base}/" if is_dir else base
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            if not o["Key"].endswith("/"):
                out[o["Key"]] = (o["Size"], o["ETag"].strip('"'))
    return out


def incomplete(s3, shape, base):
    """Keys of shape's copy under base that are missing or not yet of their full size."""
    have = listing(s3, base, shape.is_dir)
    return [k for k, m in shape.objects(base).items() if have.get(k, (None,))[0] != m.size]


def check_store(s3, shape, base, etags, full):
    """The copy under base is complete and holds nothing else; etags: each object's ETag is the
    source's for rwsplit's part layout; full: each object read back has the source's sha256.
    No multipart upload under base is left open."""
    problems = []
    want, have = shape.objects(base), listing(s3, base, shape.is_dir)
    extra = sorted(set(have) - set(want))
    if extra:
        problems.append(f"{len(extra)} unexpected objects, e.g. {extra[0]}")
    for k, m in want.items():
        size, etag = have.get(k, (None, None))
        if size != m.size:
            problems.append(f"s3://{BUCKET}/{k}: {size} bytes, expected {m.size}")
        elif etags and etag != m.route_etag:
            problems.append(f"s3://{BUCKET}/{k}: ETag {etag}, expected {m.route_etag}")
        elif full and object_sha(s3, BUCKET, k) != (m.size, m.sha256):
            problems.append(f"s3://{BUCKET}/{k}: sha256 differs from the source's")
    open_mpu = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=base).get("Uploads", [])
    if open_mpu:
        problems.append(f"{len(open_mpu)} incomplete multipart uploads under {base}")
    return problems[:5]


def check_files(shape, path):
    """The local copy at path has every file at its size."""
    problems = []
    for m in shape.members:
        p = path / m.name if shape.is_dir else path
        try:
            got = p.stat().st_size
        except OSError as e:
            problems.append(f"{p}: {e}")
            continue
        if got != m.size:
            problems.append(f"{p}: {got} bytes, expected {m.size}")
    return problems[:5]


def check_rwsplit_log(p, shape, spool, stderr):
    """The spool holds no data file, one write summary with 0 pending and 0 failed, no
    error/warn line. Records the summary and the request counts on the pass."""
    problems = []
    left = [f"{rel} ({size} bytes)" for rel, size in spool_leftovers(spool)]
    if left:
        problems.append(f"spool {spool} still holds {left[:3]}")
    sums = list(SUMMARY_RE.finditer(stderr))
    if sums:
        p.summary = sums[0].group(0).split("] ", 1)[-1]
        p.summary_counts = tuple(int(x) for x in sums[0].groups())
    if len(sums) != 1:
        problems.append(f"{len(sums)} `write summary` lines, expected 1")
    elif p.summary_counts[2] or p.summary_counts[3] or not p.summary_counts[0]:
        problems.append(f"write summary: {p.summary}")
    problems += [f"logged: {m.group(0)}" for m in PROBLEM_RE.finditer(stderr)][:3]
    p.requests = {}
    for method, _target, status in REQUEST_RE.findall(stderr):
        p.requests[f"{method} {status}"] = p.requests.get(f"{method} {status}", 0) + 1
    return problems


def expected_requests(shape):
    """(PUTs, POSTs) one upload of every file of shape needs with the route's settings."""
    puts = posts = 0
    for m in shape.members:
        if m.size < ROUTE_THRESHOLD:
            puts += 1
        else:
            puts += -(-m.size // ROUTE_PART)
            posts += 2              # CreateMultipartUpload + CompleteMultipartUpload
    return puts, posts


def summary_odd(p, shape):
    """Why the write summary's counts differ from one upload of every file ('' if not)."""
    if p.summary_counts is None:
        return ""
    files, nbytes = p.summary_counts[:2]
    if (files, nbytes) == (len(shape.members), shape.total):
        return ""
    return f"{files} files ({nbytes} bytes) for {len(shape.members)} ({shape.total} bytes)"


def remove(path):
    """Removes a copy (file or directory) from a filesystem, FUSE mounts included."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def delete_prefix(s3, base, is_dir):
    keys = [{"Key": k} for k in listing(s3, base, is_dir)]
    if is_dir:
        keys.append({"Key": f"{base}/"})           # s3fs's directory marker, if any
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys[i:i + 1000], "Quiet": True})


def cleanup(row, run, s3):
    # Through the mount first, so a FUSE daemon forgets the file and drops its cache copy.
    if row.path is not None:
        remove(row.path(run))
    if row.base is not None:
        delete_prefix(s3, row.base(run), row.shape.is_dir)


# -- timing -------------------------------------------------------------------------------


@dataclass
class ChildResult:
    rc: int
    timed_out: bool
    t_exit: float                   # time.time() as soon as wait4 returned
    wall_s: float
    stdout: str
    stderr: str
    cpu: float                      # user + system seconds of the child's process tree


def run_child(argv, env, out_dir, tag):
    """Runs argv with stdout and stderr in files (no pipe for us to drain) and blocks in
    wait4, so the moment it exits is seen at once; a timer kills its process group after
    PASS_TIMEOUT."""
    out_path, err_path = out_dir / f"{tag}.out", out_dir / f"{tag}.err"
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                start_new_session=True)
    fired = threading.Event()

    def kill():
        fired.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(PASS_TIMEOUT, kill)
    timer.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
        t_exit, wall = time.time(), time.perf_counter() - t0
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildResult(proc.returncode, fired.is_set(), t_exit, wall,
                       out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                       ru.ru_utime + ru.ru_stime)


def child_json(stdout):
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def poll_durable(s3, shape, base):
    """time.time() when the store first lists every file of the copy complete (polled every
    POLL_S), or None after DURABLE_DEADLINE."""
    deadline = time.monotonic() + DURABLE_DEADLINE
    while True:
        if not incomplete(s3, shape, base):
            return time.time()
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_S)


def take_times(p, row, run, res, j, s3):
    """Fills the pass's times from the child's JSON; '' or why it failed."""
    p.save_s, p.upload_s = j.get("save_s"), j.get("upload_s")
    if not row.self_timed:
        p.upload_s = res.wall_s
    p.steps = {k: j[k] for k in STEPS if k in j} or None
    if "t_end" in j:
        p.exit_wait_s = res.t_exit - j["t_end"]
    if row.returns:
        p.returns_s = p.save_s + (p.upload_s or 0.0)
    if row.durable == "close":
        # Durable at close: so complete in the store by the time the child has exited.
        left = incomplete(s3, row.shape, row.base(run))
        if left:
            return f"{len(left)} files not complete in the store at the child's exit"
        p.durable_s = p.save_s
    elif row.durable == "poll":
        seen = poll_durable(s3, row.shape, row.base(run))
        if seen is None:
            left = incomplete(s3, row.shape, row.base(run))
            return f"not durable {DURABLE_DEADLINE} s after exit: {len(left)} files incomplete"
        p.durable_s = seen - j["t_open"]
    elif row.durable == "exit":
        p.durable_s = res.t_exit - j["t_open"]
    elif row.durable == "returns":
        p.durable_s = p.returns_s
    elif row.durable == "upload":
        p.durable_s = p.upload_s
    return ""


def one_pass(row, run, out_dir, server_pid, s3, full):
    tag = f"{re.sub(r'[^a-z0-9]+', '-', row.name.lower()).strip('-')}-{row.shape.tag}-{run}"
    daemon = row.mount.pid if row.mount else None
    s0, d0, (m0, st0) = cpu_of(server_pid), cpu_of(daemon), machine_cpu()
    res = run_child(row.argv(run), row.env, out_dir, tag)
    p = Pass(False)
    j = child_json(res.stdout) if row.self_timed else {}
    err_lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if res.timed_out or res.rc != 0 or j is None:
        why = f"killed after {PASS_TIMEOUT} s" if res.timed_out else f"exit status {res.rc}"
        p.note = why + (f": {' | '.join(err_lines[-3:])}" if err_lines else "")
        return p
    why = take_times(p, row, run, res, j, s3)
    (m1, st1), server = machine_cpu(), cpu_of(server_pid) - s0
    p.client_cpu = res.cpu + (cpu_of(daemon) - d0 if daemon else 0.0)
    p.server_cpu, p.steal = server, st1 - st0
    p.other_cpu = max(0.0, (m1 - m0) - p.client_cpu - server)
    problems = [why] if why else []
    if row.path is not None and row.mount is None:
        problems += check_files(row.shape, row.path(run))
    if row.base is not None:
        problems += check_store(s3, row.shape, row.base(run), row.rwsplit, full and row.rwsplit)
    if row.rwsplit:
        problems += check_rwsplit_log(p, row.shape, row.spool, res.stderr)
    p.ok, p.note = not problems, "; ".join(problems)
    return p


def describe_pass(p):
    parts = [f"{k} {v:.3f} s" for k, v in (("returns", p.returns_s), ("durable", p.durable_s),
                                           ("upload", p.upload_s), ("exit wait", p.exit_wait_s))
             if v is not None]
    return ", ".join(parts) + ("" if p.ok else f"  FAILED: {p.note}")


def measure(rows, runs, alt_runs, out_dir, server_pid, s3, loads):
    """runs rounds; in each, every row of every shape once (the FUSE rows in the first
    alt_runs rounds only: their passes take 25-35 s each), after a sync (so no pass pays for
    the previous one's dirty pages) and SETTLE seconds since the last large free. Rounds
    interleave the rows so drift hits them alike. The last round also reads every rwsplit
    object back (sha256)."""
    freed = time.monotonic()
    for r in range(1, runs + 1):
        loads.append(load_average())
        log(f"round {r}/{runs}, load average {loads[-1]}")
        for row in rows:
            if row.slow and r > alt_runs:
                continue
            os.sync()
            time.sleep(max(0.0, SETTLE - (time.monotonic() - freed)))
            try:
                p = one_pass(row, r, out_dir, server_pid, s3, full=r == runs)
            except Exception as e:   # noqa: BLE001 - recorded, the other rows go on
                p = Pass(False, f"error: {e!r}")
            row.passes.append(p)
            log(f"run {r}/{runs} {row.shape.tag:4s} {row.name:46s} " + describe_pass(p))
            try:
                cleanup(row, r, s3)
            except Exception as e:   # noqa: BLE001 - a leftover copy only costs space
                log(f"cleanup of {row.name} run {r}: {e!r}")
            freed = time.monotonic()


# -- setup --------------------------------------------------------------------------------


def write_config(server, work, cache_dir, spool):
    text = f"[global]\ncache_dir = {cache_dir}\n\n" + server.config_text(routes=[
        ("write", ROUTE, f"s3://{BUCKET}/{ROUTE_PREFIX}", dict(ROUTE_OPTIONS, spool=spool))])
    path = work / "rwsplit-ckpt.conf"
    path.write_text(text)
    return path


def mount_all(server, work):
    """{"s3fs": FuseMount, "rclone": FuseMount} mounted on the bucket, each with its key
    prefix made as a directory; a str instead of a mount says why that tool is left out."""
    mounts = {}
    for tool in ("s3fs", "rclone"):
        why = tool_reason(tool)
        if why:
            mounts[tool] = why
            continue
        mnt = work / f"mnt-{tool}"
        m = (s3fs_mount(server, BUCKET, mnt, work) if tool == "s3fs" else
             rclone_mount(server, BUCKET, mnt, work, work / "rclone-cache"))
        try:
            m.mount()
            (mnt / tool).mkdir(exist_ok=True)
            mounts[tool] = m
        except (RuntimeError, OSError) as e:
            m.unmount()
            mounts[tool] = f"mount failed: {e}"
    return mounts


def option_defaults(argv, names):
    """'name default, ...' for the options names, read from a tool's own help text."""
    text = run_text(argv)
    found = []
    for n in names:
        m = (re.search(rf"--{re.escape(n)} \S+\s+.*\(default ([^)]*)\)", text) or
             re.search(rf"^\s*{re.escape(n)} \(default=([^)]*)\)", text, re.MULTILINE))
        found.append(f"{n} {m.group(1) if m else '?'}")
    return ", ".join(found)


def fuse_options():
    """The defaults the s3fs and rclone rows run with, as the installed versions state them."""
    return {
        "s3fs": option_defaults(["s3fs", "--help"], ("multipart_size", "parallel_count",
                                                     "max_dirty_data", "use_cache")),
        "rclone": option_defaults(["rclone", "mount", "--help"],
                                  ("vfs-write-back", "vfs-cache-max-age",
                                   "vfs-cache-max-size")) + ", " +
        option_defaults(["rclone", "help", "flags"], ("transfers", "s3-upload-cutoff",
                                                      "s3-chunk-size", "s3-upload-concurrency")),
    }


def page_reporting():
    """Whether freed guest memory goes back to the hypervisor (virtio-balloon free page
    reporting), which makes first touches of memory slow (see checkpoint_child.warm_memory)."""
    drv = Path("/sys/bus/virtio/drivers/virtio_balloon")
    bound = drv.is_dir() and any(e.name.startswith("virtio") for e in drv.iterdir())
    opts = [w for w in Path("/proc/cmdline").read_text().split() if "page_reporting" in w]
    return (("virtio_balloon bound" if bound else "no virtio_balloon") +
            (f"; kernel command line {' '.join(opts)}" if opts else ""))


def machine_facts(lib, dirs, server):
    import botocore
    vm = "; ".join(f"{k} {Path('/proc/sys/vm', k).read_text().strip()}" for k in
                   ("dirty_ratio", "dirty_background_ratio", "dirty_bytes",
                    "dirty_background_bytes", "dirty_expire_centisecs"))
    tools = [(k, v) for k, v in tool_facts() if k in ("MinIO", "mc", "s3fs", "rclone", "boto3")]
    facts = host_facts() + [
        ("page-cache writeback (vm.*)", vm),
        ("memory balloon", page_reporting()),
        ("rwsplit", lib_fact(lib)),
        *tools,
        ("Python, botocore", f"{sys.version.split()[0]} ({VENV_PY.relative_to(REPO)}); "
         f"botocore {botocore.__version__}"),
        ("load average at start", load_average()),
    ]
    facts += [(name, f"{d} ({fs_type(d)})") for name, d in dirs]
    facts.append(("MinIO data", f"{server.data_dir} ({fs_type(server.data_dir)})"))
    return facts


# -- report -------------------------------------------------------------------------------


def values(row, attr):
    return [getattr(p, attr) for p in row.passes if p.ok and getattr(p, attr) is not None]


def med(row, attr):
    v = values(row, attr) if row is not None else []
    return statistics.median(v) if v else None


def sec(x):
    return "n/a" if x is None else f"{x:.3f} s"


def stat_cells(row, attr, nbytes=None):
    """median | min | max [| MiB/s at the median] | ok runs"""
    v = values(row, attr)
    runs = f"{sum(1 for p in row.passes if p.ok)}/{len(row.passes)}"
    if not v:
        return "failed | | |" + (" |" if nbytes else "") + f" {runs}"
    m = statistics.median(v)
    rate = f" {nbytes / MiB / m:.0f} |" if nbytes else ""
    return f"{m:.3f} | {min(v):.3f} | {max(v):.3f} |{rate} {runs}"


class Results:
    """The rows by shape and name, and the medians the ratios are made of."""

    def __init__(self, shapes, rows):
        self.shapes = shapes
        self.rows = rows

    def of(self, shape):
        return [r for r in self.rows if r.shape is shape]

    def get(self, shape, name):
        """The row of shape named name, or else the first whose name starts with it."""
        mine = self.of(shape)
        return next((r for r in mine if r.name == name),
                    next((r for r in mine if r.name.startswith(name)), None))

    def natives(self, shape):
        """[(name, row, attr)]: the native uploads, each the upload alone: boto3 upload_file
        is the SDK fallback's upload, timed by itself in that child (the same call on the same
        bytes, a file in the page cache, as a separate boto3 row would time), mc cp its row."""
        return [(BOTO3, self.get(shape, "SDK fallback"), "upload_s"),
                ("mc cp", self.get(shape, "mc cp"), "durable_s")]

    def best_native(self, shape):
        """(median seconds, name) of the fastest native upload."""
        return min(((med(r, a), n) for n, r, a in self.natives(shape) if med(r, a) is not None),
                   default=(None, "none"))

    def target(self, shape):
        """(rwsplit save, local disk save, ratio or None)."""
        rw, local = (med(self.get(shape, n), "returns_s") for n in ("rwsplit write route",
                                                                     "local disk"))
        return rw, local, (rw / local if rw and local else None)


def verdict(res, shape):
    rw, local, r = res.target(shape)
    if r is None:
        return f"- **{shape.label}**: n/a (a side failed)."
    limit = TARGET * local
    if r <= TARGET:
        return (f"- **{shape.label}**: **met** — rwsplit's save returned in {sec(rw)} vs "
                f"{sec(local)} to local disk: {r:.2f}× (limit {TARGET}× = {sec(limit)}; "
                f"{limit - rw:.3f} s to spare).")
    return (f"- **{shape.label}**: **missed** — rwsplit's save returned in {sec(rw)} vs "
            f"{sec(local)} to local disk: {r:.2f}×, over the {TARGET}× limit ({sec(limit)}) "
            f"by {rw - limit:.3f} s ({(r / TARGET - 1) * 100:.0f} % over the limit).")


def plain(x):
    return "–" if x is None else f"{x:.3f}"


def ratio_cell(num, den):
    return "n/a" if not num or not den else f"{num / den:.2f}×"


def ratio_matrix(res, shape):
    """Each rwsplit number of one shape over each other way's: saves over saves, durable
    over durable (the local rows have only a save; the native uploads only a durable)."""
    g = lambda name, attr: med(res.get(shape, name), attr)  # noqa: E731
    best, best_name = res.best_native(shape)
    cols = [("local disk", g("local disk", "returns_s"), None),
            ("tmpfs", g("tmpfs", "returns_s"), None),
            ("local disk + fsync", g("local disk + fsync", "returns_s"), None),
            (f"best native upload ({best_name})", best, best),
            ("s3fs", g("s3fs", "returns_s"), g("s3fs", "durable_s")),
            ("rclone", g("rclone", "returns_s"), g("rclone", "durable_s")),
            ("SDK fallback", g("SDK fallback", "returns_s"), g("SDK fallback", "durable_s"))]
    rw, rwf = res.get(shape, "rwsplit write route"), res.get(shape, "rwsplit write route + fsync")
    up = [p.durable_s - p.save_s for p in rw.passes if p.ok and p.durable_s is not None]
    # (label, median, which of the other side's numbers it is set against)
    lines = [
        ("save returns, rwsplit write route", med(rw, "returns_s"), "save"),
        ("durable, rwsplit write route", med(rw, "durable_s"), "durable"),
        ("durable − save, rwsplit write route (the upload and the exit)",
         statistics.median(up) if up else None, "upload"),
        ("save returns = durable, rwsplit write route + fsync", med(rwf, "returns_s"), "durable"),
    ]
    L = [f"**{shape.label}** (the other side's median in the header: save / durable)\n",
         "| rwsplit number | median | " + " | ".join(
             f"/ {name} ({plain(s)} / {plain(d)})"
             for name, s, d in cols) + " |",
         "|---|---|" + "---|" * len(cols)]
    for label, num, against in lines:
        cells = []
        for _name, s, d in cols:
            if against == "upload":         # the upload part: only against an upload
                cells.append(ratio_cell(num, d) if d is best else "")
            else:
                cells.append(ratio_cell(num, d if against == "durable" and d is not None else s))
        L.append(f"| {label} | {sec(num)} | " + " | ".join(cells) + " |")
    L.append("")
    return L


def report_header(args, cmdline, shapes, total_seconds):
    L = ["# rwsplit benchmark: checkpoint writes (issue 4)\n",
         f"Generated by `{cmdline}` (run by `make bench`) in {total_seconds:.0f} s. Do not edit "
         "by hand: run it again.\n",
         "Two checkpoints, each of random bytes (os.urandom), saved by every row:\n"]
    for s in shapes:
        sizes = [m.size for m in s.members]
        L.append(f"- **{s.label}**: {len(sizes)} file(s), {s.total / MiB:.0f} MiB in all"
                 + (f" (sizes uniform in 1–8 MiB from seed {args.seed}: {min(sizes) / MiB:.2f} "
                    f"to {max(sizes) / MiB:.2f} MiB), saved into a new directory one file after "
                    "the other" if s.is_dir else f", sha256 `{s.members[0].sha256[:16]}…`"))
    L.append("")
    L.append("A save is a fresh `.tools/venv/bin/python` process (`bench/checkpoint_child.py`) "
             "that maps the checkpoint into memory first (untimed; `mmap` with `MAP_POPULATE` "
             "of the source files, in the page cache), then writes each file in "
             "8 MiB `os.write` calls and closes it, timing the open of the first file → the close "
             f"of the last itself (`time.perf_counter`). Each row ran {args.runs} times per "
             f"shape, but s3fs and rclone {min(args.runs, args.alt_runs)} (`--alt-runs`: their "
             "passes take 25-35 s each at 1 GiB, for a run of `make bench` of reasonable "
             "length); rounds interleave rows and shapes; `sync` and "
             f"{SETTLE} s since the previous pass's cleanup come before every pass (so no pass "
             "pays for the previous one's dirty pages, and the page-reporting cycle its frees "
             "start has run before the next save). "
             "Tables give the median and min/max seconds of the successful passes. The store is "
             "one MinIO on 127.0.0.1 started by the script; s3fs and rclone mount its bucket.\n")
    L.append("Before it starts timing, every child writes and unlinks a scratch file of "
             f"{WARM_FACTOR}× the checkpoint's size on the filesystem its save goes to "
             "(`--warm`, untimed; "
             "unlinked before writeback, so no disk I/O): on a VM whose freed memory goes back "
             "to the hypervisor (see *memory balloon* below) the first touch of such memory "
             "costs a fault in the host per page (the same 256 MiB save took 0.06 s or 1 s "
             "without it, depending on what ran before). The rows then compare the save paths, "
             "not the hypervisor's memory.\n" if not args.no_warm else
             "Run with `--no-warm`: the children did **not** warm memory before timing, so a "
             "save's time depends on whether its page-cache pages were backed by the host.\n")
    return L


def report_machine(facts, loads, conf_text, fuse, mounts):
    L = ["## Machine\n", "| | |\n|---|---|"]
    L += [f"| {k} | {v} |" for k, v in facts]
    L.append(f"| load average before each round | {' / '.join(loads)} |")
    L.append("")
    L += ["## rwsplit config used\n", "```ini", conf_text.rstrip("\n"), "```\n"]
    L.append("## The FUSE mounts\n")
    for tool in ("s3fs", "rclone"):
        m = mounts[tool]
        if isinstance(m, str):
            L.append(f"- **{tool}**: left out: {m}")
        else:
            L.append(f"- **{tool}**: `{m.shown()}` (mounted once for the whole run, unmounted "
                     f"at the end); defaults in effect: {fuse[tool]}.")
    L.append("")
    return L


def report_saves(res):
    L = ["## 1. Save returns to the training loop\n",
         "open of the first file → last write → (fsync →) close of the last, as the loop sees "
         "it; for the SDK fallback the local save and the upload after it. *exit wait*: from the "
         "child's last statement to the moment the parent saw it exit (interpreter teardown; "
         "under rwsplit also the wait for the upload queue to drain).\n"]
    for s in res.shapes:
        L += [f"### {s.label}\n",
              "| row | where | median s | min s | max s | MiB/s at median | ok runs | "
              "exit wait (median s) |", "|---|---|---|---|---|---|---|---|"]
        for r in res.of(s):
            if r.returns:
                wait = med(r, "exit_wait_s")
                L.append(f"| {r.name} | {r.where} | {stat_cells(r, 'returns_s', s.total)} | "
                         + ("" if wait is None else f"{wait:.3f}") + " |")
        L.append("")
    L.append("Where the save's time goes (median milliseconds of each step, summed over the "
             "files, timed by the child; the SDK fallback's local save only):\n")
    L.append("| shape | row | open | writes | fsync | close |\n|---|---|---|---|---|---|")
    for s in res.shapes:
        for r in res.of(s):
            cells = []
            for k in STEPS:
                v = [p.steps[k] for p in r.passes if p.ok and p.steps and k in p.steps]
                cells.append(f"{statistics.median(v) * 1000:.1f}" if v else "")
            if any(cells):
                L.append(f"| {s.label} | {r.name} | " + " | ".join(cells) + " |")
    L.append("")
    return L


DURABLE_HOW = {
    "exit": "open → process exit (exit waits for the upload queue)",
    "close": "open → close (close returned after the upload)",
    "poll": f"open → first listing after the exit showing every file complete (every "
            f"{POLL_S * 1000:.0f} ms)",
    "returns": "local save + upload",
    "upload": "the whole `mc cp` process (file(s) in the page cache)",
}


def report_durable(res):
    L = ["## 2. Time to durable (every file complete in the store)\n",
         "- **rwsplit write route**: the child's `time.time()` at the first open → the moment "
         "the parent's `wait4` returned (process exit waits for the upload queue to drain).\n"
         "- **rwsplit write route + fsync**, **s3fs**: `fsync` on a write route, and `close` on "
         "s3fs, upload before returning, so the copy is durable at close: the save time. The "
         "check right after the exit confirmed every object complete.\n"
         "- **rclone**: `close` returns when rclone's local cache has the file; rclone uploads "
         "it after `--vfs-write-back`. From the child's exit the parent lists the key prefix "
         "(ListObjectsV2) every 50 ms until every file is there at its full size (at most "
         f"{DURABLE_DEADLINE} s).\n"
         "- **SDK fallback**: local save + boto3 upload, one after the other in the child.\n"
         "- **boto3 upload_file**: the SDK fallback's upload part, timed by itself in that "
         "child: the upload call(s) of the file it just saved (in the page cache), by a client "
         "that has already made one request. A separate row uploading the source file would "
         "time the same call on the same bytes; it is not run again, for time.\n"
         "- **mc cp**: the whole `mc cp` process (start-up included) uploading the source "
         "file(s), in the page cache.\n"]
    for s in res.shapes:
        L += [f"### {s.label}\n", "| row | what is timed | median s | min s | max s | MiB/s at "
              "median | ok runs |", "|---|---|---|---|---|---|---|"]
        for r in res.of(s):
            if r.durable:
                L.append(f"| {r.name} | {DURABLE_HOW[r.durable]} | "
                         f"{stat_cells(r, 'durable_s', s.total)} |")
            if r.name.startswith("SDK fallback"):
                L.append(f"| {BOTO3} | the SDK fallback's upload part alone | "
                         f"{stat_cells(r, 'upload_s', s.total)} |")
        L.append("")
    L.append("Native upload settings: boto3's default TransferConfig (multipart above 8 MiB, "
             "8 MiB parts, 10 threads per file; for the directory 8 files at a time from a "
             "ThreadPoolExecutor); mc as pinned (its own part size and parallelism). On plain "
             "http botocore signs the payload (a sha256 pass over the bytes); rwsplit sends it "
             "unsigned (`payload_signing = unsigned`, the default).\n")
    return L


def report_ratios(res):
    L = ["## 3. Against the target and the alternatives\n",
         f"DESIGN.md, \"Performance targets\": *{DESIGN_TARGET}*.\n"]
    L += [verdict(res, s) for s in res.shapes]
    L.append("")
    L.append("Each rwsplit number over the other way's median (below 1× means rwsplit is "
             "faster). A save is set against the other way's save (what the loop waits for), "
             "a durable time against its durable time; the local rows have only a save, the "
             "native uploads only an upload (for a save that is the loop blocked by an "
             "upload instead). The SDK fallback's save is its durable time: it returns after "
             "the upload.\n")
    for s in res.shapes:
        L += ratio_matrix(res, s)
    return L


def report_checks(res):
    L = ["## Checks (untimed, after each pass)\n",
         "rwsplit rows: ListObjectsV2 shows exactly the checkpoint's files at their sizes, each "
         "with the ETag MinIO computed of the bytes it received equal to the source's (its MD5, "
         f"or for files of {ROUTE_THRESHOLD // MiB} MiB and more the MD5 of the "
         f"{ROUTE_PART // MiB} MiB parts' MD5s); in the last round also a full GetObject "
         "sha256 of every object; ListMultipartUploads empty; no data file left in the spool "
         "(a lock file may stay); exactly one `write summary` line with 0 pending and 0 "
         "failed, and no `error`/`warn` line. Local rows: every file's size. The other rows: "
         "every object's size, nothing else under the key prefix, no open multipart upload. "
         "Each copy is removed after its check (through the mount for s3fs and rclone).\n"]
    for s in res.shapes:
        for r in (r for r in res.of(s) if r.rwsplit):
            n_ok = sum(1 for p in r.passes if p.ok)
            sums = sorted(set(p.summary for p in r.passes if p.summary))
            odd = sorted(set(filter(None, (summary_odd(p, s) for p in r.passes))))
            L.append(f"- {s.label}, {r.name}: {n_ok}/{len(r.passes)} passes passed every "
                     "check; summary lines seen: " + ("; ".join(f"`{x}`" for x in sums) or "none")
                     + (f". **Odd**: the summary counts {odd}" if odd else ""))
    L.append("")
    L.append("### rwsplit requests to the store per save (RWSPLIT_LOG=debug)\n")
    L.append("From the debug line each request logs, in every timed rwsplit pass.\n")
    L.append("| shape | row | one upload of every file needs | requests seen (passes × (method "
             "status: count)) |\n|---|---|---|---|")
    too_many = False
    for s in res.shapes:
        puts, posts = expected_requests(s)
        for r in (r for r in res.of(s) if r.rwsplit):
            seen = [p.requests for p in r.passes if p.requests is not None]
            too_many |= any(sum(v for k, v in q.items() if k.startswith("PUT ")) > puts
                            for q in seen)
            kinds = [", ".join(f"{k}: {v}" for k, v in sorted(q.items())) for q in seen]
            L.append(f"| {s.label} | {r.name} | {puts} PUT" + (f", {posts} POST" if posts else "")
                     + " | " + "; ".join(f"{kinds.count(k)} × ({k})" for k in sorted(set(kinds)))
                     + " |")
    if too_many:
        L.append("\n**Odd**: a pass above sent more PUTs than one upload of every file needs.")
    L.append("")
    return L


def report_cpu(res):
    L = ["## CPU per pass (median seconds)\n",
         f"*client*: the timed process (its threads included) plus, for s3fs and rclone, the "
         f"FUSE daemon; *MinIO*: the server; *other*: the rest of the machine's busy CPU "
         f"during the pass (kernel writeback threads, and anything else running: a large value "
         f"means the pass shared the {os.cpu_count()} CPUs with someone); *steal*: taken by the "
         "hypervisor. Covers the child's whole life (reading the checkpoint in, the warm-up, "
         "interpreter start and exit) and, for rclone, the wait until durable.\n",
         "| shape | row | client CPU s | MinIO CPU s | other CPU s | steal s |",
         "|---|---|---|---|---|---|"]
    for r in res.rows:
        ok = [p for p in r.passes if p.ok]
        if ok:
            L.append(f"| {r.shape.label} | {r.name} | " + " | ".join(
                f"{statistics.median(getattr(p, a) for p in ok):.2f}"
                for a in ("client_cpu", "server_cpu", "other_cpu", "steal")) + " |")
    L.append("")
    return L


def report_passes(res):
    failures = [(r, i + 1, p.note) for r in res.rows for i, p in enumerate(r.passes)
                if not p.ok]
    L = ["## Failed passes\n"]
    if failures:
        L.append("A failed pass is left out of the statistics above.\n")
        L += [f"- {r.shape.label}, {r.name}, run {i}: {note}" for r, i, note in failures]
    else:
        L.append("None.")
    L.append("")
    L += ["## Exact commands\n",
          "Run from the repository root; shown for run 1 (run N writes `…-N…`); paths are this "
          "run's temp dirs; the boto3 children get the server's address and keys through "
          "`RWSPLIT_TEST_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, "
          "`AWS_REGION`.\n"]
    for r in res.rows:
        argv = [os.path.relpath(a, REPO) if a.startswith(str(REPO)) else a for a in r.argv(1)]
        env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in r.shown_env.items())
        L.append(f"- **{r.shape.label}, {r.name}**: `{(env + ' ') if env else ''}"
                 f"{shlex.join(argv)}`" + (" (through the mount above)" if r.mount else ""))
    L.append("")
    L += ["## Every pass (seconds; x = failed)\n",
          "| shape | row | save returns | durable | upload | exit wait |",
          "|---|---|---|---|---|---|"]
    for r in res.rows:
        cells = []
        for a in ("returns_s", "durable_s", "upload_s", "exit_wait_s"):
            vals = [getattr(p, a) for p in r.passes]
            cells.append(", ".join("—" if v is None else f"{v:.3f}" + ("" if p.ok else "x")
                                   for v, p in zip(vals, r.passes))
                         if any(v is not None for v in vals) else "")
        L.append(f"| {r.shape.label} | {r.name} | " + " | ".join(cells) + " |")
    L.append("")
    return L


def write_report(out, args, cmdline, facts, loads, res, conf_text, fuse, mounts, seconds):
    L = (report_header(args, cmdline, res.shapes, seconds) +
         report_machine(facts, loads, conf_text, fuse, mounts) + report_saves(res) +
         report_durable(res) + report_ratios(res) + report_checks(res) + report_cpu(res) +
         report_passes(res))
    replace_section(out, SECTION, "\n".join(L))


def write_json(res, args):
    """checkpoint.json (save returns) and checkpoint_durable.json (durable) for the chart."""
    common = {"unit": "s", "lower_is_better": True, "runs": args.runs,
              "design_target": DESIGN_TARGET,
              "target_ratio": {s.label: res.target(s)[2] for s in res.shapes}}
    for name, attr, title, want in (
            ("checkpoint", "returns_s", "Checkpoint save: seconds until it returns to the "
             "training loop", lambda r: r.returns),
            ("checkpoint_durable", "durable_s", "Checkpoint save: seconds until durable in "
             "the store", lambda r: r.durable)):
        groups = []
        for s in res.shapes:
            vals = {r.name: med(r, attr) for r in res.of(s) if want(r)}
            if attr == "durable_s":
                vals[BOTO3] = med(res.get(s, "SDK fallback"), "upload_s")
            groups.append({"label": s.label, "values": vals})
        save_json(name, dict(common, title=title, groups=groups))


# -- main ---------------------------------------------------------------------------------


def _raise_exit(signum, frame):
    log(f"signal {signum}: stopping (mounts, MinIO and temp dirs are cleaned up)")
    raise SystemExit(128 + signum)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, help="the one-file checkpoint (default 1024; "
                    "--quick 96)")
    ap.add_argument("--files", type=int, help="files of the sharded checkpoint (default 200; "
                    "--quick 16)")
    ap.add_argument("--seed", type=int, default=1, help="for the sharded sizes (default 1)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--alt-runs", type=int, default=1,
                    help="repetitions of the s3fs and rclone rows (default 1: at 1 GiB their "
                         "passes take 25-35 s each)")
    ap.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--build", type=Path, default=Path("build"),
                    help="build directory holding lib/librwsplit.so (default build)")
    ap.add_argument("--no-warm", action="store_true",
                    help="children do not write and unlink a scratch file of "
                         f"{WARM_FACTOR}x the checkpoint's size before timing "
                         "(bench/checkpoint_child.py, warm_memory)")
    a = ap.parse_args(argv)
    a.size_mib = a.size_mib or (96 if a.quick else 1024)
    a.files = a.files or (16 if a.quick else 200)
    if not 1 <= a.size_mib <= 4096 or not 1 <= a.files <= 1000 or not 1 <= a.runs <= 20 \
            or not 1 <= a.alt_runs:
        ap.error("--size-mib must be 1..4096, --files 1..1000, --runs 1..20 and --alt-runs ≥ 1")
    a.build = a.build if a.build.is_absolute() else REPO / a.build
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    cmdline = command_line("checkpoint.py", argv)
    lib = args.build / "lib" / "librwsplit.so"
    for need in (lib, args.build / "lib" / "librwsplit-s3.so", VENV_PY):
        if not need.exists():
            sys.exit(f"{need} is missing: build the library (make) and the venv "
                     "(scripts/deps.sh) first")
    if os.path.exists(ROUTE.rsplit("/", 1)[0]):
        sys.exit(f"{ROUTE.rsplit('/', 1)[0]} exists on disk: the route must be a path that "
                 "does not")
    signal.signal(signal.SIGTERM, _raise_exit)
    started = time.monotonic()
    # The local-disk saves, the spool, the FUSE caches and MinIO's data dir (a temp dir from
    # the harness) share the root filesystem.
    work = Path(tempfile.mkdtemp(prefix="rwbench-ckpt-", dir="/var/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="rwbench-ckpt-", dir="/dev/shm"))
    server = mc = None
    mounts = {}
    try:
        dirs = {"local": work / "local", "spool": work / "spool", "tmpfs": shm / "save"}
        for d in (*dirs.values(), work / "logs", work / "src"):
            d.mkdir()
        log(f"writing the checkpoints ({args.size_mib} MiB; {args.files} files) to {work}/src")
        shapes = make_shapes(work / "src", args.size_mib, args.files, args.seed)
        server = MinioServer().start()
        mc = Mc(server)
        mc.mb(BUCKET)
        s3 = server.boto3_client()
        mounts = mount_all(server, work)
        conf = write_config(server, work, shm / "cache", dirs["spool"])
        facts = machine_facts(lib, [("local disk dir (local rows, SDK fallback)", dirs["local"]),
                                    ("rwsplit spool", dirs["spool"]),
                                    ("tmpfs dir", dirs["tmpfs"]),
                                    ("checkpoint sources (native uploads)", work / "src")],
                              server)
        st = Setup(server, mc, dirs, lib, conf, not args.no_warm, mounts)
        rows = [r for s in shapes for r in all_rows(st, s)]
        loads = []
        measure(rows, args.runs, args.alt_runs, work / "logs", server.pid, s3, loads)
        facts.append(("load average at end", load_average()))
        res = Results(shapes, rows)
        write_report(args.out, args, cmdline, facts, loads, res, conf.read_text(), fuse_options(),
                     mounts, time.monotonic() - started)
        write_json(res, args)
        log(f"wrote the {SECTION} section of {args.out} in {time.monotonic() - started:.0f} s")
        failed = sum(1 for r in rows for p in r.passes if not p.ok)
        if failed:
            log(f"{failed} passes FAILED: see the report's 'Failed passes'")
        return 1 if failed else 0
    finally:
        release(server, mc, shm, work)


if __name__ == "__main__":
    sys.exit(main())
