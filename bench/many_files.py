#!/usr/bin/env python3
"""Many small files at high concurrency (issue 6, workload 2) and memory (workload 7).

The data set: --files objects (default 20000) of 128 KiB (131,072 random bytes each) in 4
directories, written to a temp dir on the root filesystem, copied to /dev/shm, and uploaded
once with `mc cp --recursive` to s3://rwbench-many/data/ on a throw-away MinIO on 127.0.0.1
(tests/harness/minio.py) that this script starts and stops.

Every row reads all of them with 32 and with 128 threads of one process, cold and then warm
(right after), in rounds that interleave the rows so drift hits them alike:

  rows reading files   bench/mtread.c (built by this script with gcc -O2 -pthread): N threads
                       each take the next path of a list (directory by directory, name order)
                       and open / read fully with 1 MiB read() calls / close it
    rwsplit            LD_PRELOAD=DIR/lib/librwsplit.so, read route /mnt/rwbench-many/data ->
                       s3://rwbench-many/data/, prefetch = listing, cache_dir in /dev/shm with a
                       budget twice the data set. Cold: empty cache_dir
    s3fs, default      s3fs-fuse with its default options (common.s3fs_mount). Cold: fresh mount
    s3fs, read-tuned   + kernel_cache,max_stat_cache_size=100000,parallel_count=20
    rclone             rclone mount --vfs-cache-mode full, cache dir on the root filesystem
                       (rclone's default place is ~/.cache). Cold: fresh mount, empty cache dir
    local disk         the files on the root filesystem. Cold: page cache dropped
    tmpfs              the files in /dev/shm (both passes read memory)
  rows reading objects (the path list becomes a key list; no LIST, no HEAD)
    ceiling: s3get     bench/s3get.c as it is: libcurl multi, N GETs in flight
    boto3              a boto3 client (max_pool_connections = N) and a ThreadPoolExecutor of N
                       threads doing get_object + read() (`many_files.py boto3-get`, below)

Before every cold pass: sync; echo 3 > /proc/sys/vm/drop_caches, so MinIO reads its objects
from disk. Each reader times itself from its first request to its last byte (the tables'
seconds), prints files and bytes (checked against the data set: a short pass fails), and
common.timed() records the process's wall time and the CPU of its tree (+ the FUSE daemon's or
rwsplit's fetch agent's), MinIO's and the rest of the machine's. The reader runs under GNU time -f %M for its peak RSS
(wait4's ru_maxrss would include the forked Python parent's peak, ~50 MiB). For FUSE rows the
daemon's own peak RSS (VmHWM, reset between passes via clear_refs) is reported too. Runs:
--runs (3) for rwsplit, the ceiling, local disk and tmpfs, --alt-runs (1) for the slow rows
(s3fs, rclone, boto3). A pass over --pass-timeout seconds is killed and counted failed; a ratio against a row
whose every pass timed out is given as a lower bound (≥).

Memory (workload 7): every rwsplit pass records the reader's peak RSS and, after it, du of
cache_dir (apparent and allocated, the whole dir and obj/, the objects the budget counts).
One more rwsplit row, 128 threads, runs once cold and once warm with a budget of a quarter of
the data set and RWSPLIT_LOG=info; a thread samples the allocated bytes of obj/ and tmp/ every
0.2 s. The DESIGN.md target is resident memory <= 64 MiB beyond the cache budget: the reader's
peak RSS plus whatever the cache held over its budget.

Correctness (untimed, after the timed runs): --sample files (default 500) chosen at random are
read through rwsplit with sha256sum (xargs -P4 -n 50) from an empty cache, again warm, and
again through the small-budget route after its run, and compared with the source files.

    .tools/venv/bin/python bench/many_files.py [--files 20000] [--quick] [--runs 3]
        [--alt-runs 1] [--pass-timeout 120] [--sample 500] [--build build]
        [--out bench/RESULTS.md]

Needs root (drop_caches, FUSE) and GNU time. At the default size it needs about 8 GB on the
root filesystem and 5 GB in /dev/shm, and takes far more than five minutes on 2 cores: 46
minutes on a heavily shared machine (load average 20-140); --quick (2000 files, 1 run) takes
about 4 minutes.

Writes its section `many-files` of --out, bench/results/many_files.json (files/s) and
bench/results/memory.json (peak RSS).
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import re
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

from bench import common  # noqa: E402
from bench.common import Pass, empty_dir, fmt, log, shown_command as shown  # noqa: E402
from bench.results_md import replace_section  # noqa: E402
from tests.harness.minio import MC_BIN, Mc, MinioServer  # noqa: E402

SECTION = "many-files"
BUCKET = "rwbench-many"
PREFIX = "data/"
ROUTE = "/mnt/rwbench-many/data"    # the rwsplit read route (nothing exists there on disk)
NDIRS = 4
FILE_BYTES = 128 * 1024
THREADS = (32, 128)
MiB = 1 << 20
SAMPLE_EVERY = 0.2                  # seconds between cache-size samples in the memory run
MEMORY_TARGET = 64 * MiB            # DESIGN.md: resident memory beyond the cache budget
RWSPLIT = "rwsplit, prefetch = listing"      # row names that the ratios and checks use
SMALL_BUDGET = "rwsplit, cache = ¼ of the data set"
CEILING = "ceiling: s3get"
GNU_TIME = "/usr/bin/time"          # Debian package `time`: the readers' peak RSS
S3GET_RE = re.compile(r"objects=(\d+) bytes=(\d+) seconds=([0-9.]+)")


# -- the boto3 reader (run as `many_files.py boto3-get ...` in its own process) ------------


def boto3_get(argv):
    """boto3-get ENDPOINT BUCKET THREADS KEYS_FILE: GET every key of KEYS_FILE ("KEY SIZE"
    lines, as s3get reads) with THREADS threads sharing one client, read each body fully,
    print the same JSON line as mtread. Credentials and region from the environment."""
    import boto3
    from botocore.config import Config

    endpoint, bucket, threads, keys_file = argv[0], argv[1], int(argv[2]), argv[3]
    keys = [line.split()[0] for line in Path(keys_file).read_text().splitlines() if line]
    s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(
        s3={"addressing_style": "path"}, max_pool_connections=threads,
        retries={"max_attempts": 3, "mode": "standard"}, proxies={}))

    def get(key):
        return len(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        sizes = list(pool.map(get, keys))      # the first failure raises: exit status 1
    dt = time.perf_counter() - t0
    print(json.dumps({"files": len(sizes), "bytes": sum(sizes), "seconds": round(dt, 6),
                      "files_per_s": round(len(sizes) / dt, 1),
                      "mb_per_s": round(sum(sizes) / 1e6 / dt, 1)}))
    return 0


# -- data set -----------------------------------------------------------------------------


@dataclass
class Dataset:
    disk: Path                      # .../data on the root filesystem, holding d0..d3
    shm: Path                       # the same files in /dev/shm
    rels: list                      # relative paths, directory by directory, name order

    @property
    def total_bytes(self):
        return len(self.rels) * FILE_BYTES


def make_dataset(work, shm, nfiles):
    """nfiles files of FILE_BYTES random bytes in NDIRS directories, on disk and in tmpfs."""
    disk_root, shm_root = work / "local" / "data", shm / "local" / "data"
    per_dir = -(-nfiles // NDIRS)
    rels = [f"d{i // per_dir}/f{i % per_dir:06d}.bin" for i in range(nfiles)]
    for root in (disk_root, shm_root):
        for d in {rel.split("/")[0] for rel in rels}:
            (root / d).mkdir(parents=True, exist_ok=True)
    for rel in rels:
        data = os.urandom(FILE_BYTES)
        (disk_root / rel).write_bytes(data)
        (shm_root / rel).write_bytes(data)
    return Dataset(disk_root, shm_root, rels)


def upload(mc, server, ds):
    """mc cp --recursive into s3://BUCKET/data/, then checks the listing."""
    common.upload_tree(mc, server, ds.disk, BUCKET, PREFIX, len(ds.rels), ds.total_bytes,
                       timeout=1800)


def write_list(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


# -- rows ---------------------------------------------------------------------------------


@dataclass
class Result:
    """One timed pass and what the reader reported."""
    p: Pass
    read_s: float = None            # the reader's own time, first request to last byte
    files: int = 0
    bytes: int = 0
    daemon_rss_kib: int = 0         # FUSE rows: the daemon's peak RSS during this pass
    cache: dict = None              # rwsplit rows: du of cache_dir after the pass


@dataclass
class Row:
    """One way of reading the data set with `threads` threads. prepare() runs before each
    cold pass (untimed), cleanup() after the warm pass."""
    system: str
    threads: int
    argv: list
    env: dict
    command: str                    # exactly what was timed, as a shell line
    runs: int
    cold_means: str
    prepare: object = None
    cleanup: object = None
    mount: object = None            # a common.FuseMount whose daemon serves the reads
    cache_dir: Path = None          # rwsplit rows
    budget: int = 0                 # rwsplit rows: the route's cache budget in bytes
    unavailable: str = ""
    warm: bool = True               # also a warm pass after the cold one
    passes: dict = field(default_factory=lambda: {"cold": [], "warm": []})

    @property
    def name(self):
        return f"{self.system}, {self.threads} threads"


def rwsplit_config(server, work, cache_dir, budget, tag):
    return common.read_route_config(server, work / f"rwsplit-{tag}.conf", cache_dir, ROUTE,
                                    f"s3://{BUCKET}/{PREFIX}", f"{max(1, budget // MiB)}MiB")


def rwsplit_row(server, lib, work, shm, mtread, lists, threads, runs, budget, tag, system):
    cache = shm / f"cache-{tag}"
    conf = rwsplit_config(server, work, cache, budget, tag)
    env, env_shown = common.rwsplit_env(server, lib, conf)
    argv = [mtread, threads, lists["rwsplit"]]
    # The cache is emptied after the warm pass too: the data set is in /dev/shm several times.
    return Row(system, threads, argv, env, shown(env_shown, argv), runs,
               "empty cache_dir, page cache dropped", prepare=lambda: empty_dir(cache),
               cleanup=lambda: shutil.rmtree(cache, ignore_errors=True),
               cache_dir=cache, budget=budget)


def fuse_rows(server, work, mtread, ds, threads, runs):
    """s3fs (default and read-tuned) and rclone: a fresh mount for every cold pass (rclone's
    cache dir emptied too), unmounted after the warm pass."""
    rows = []
    rclone_cache = work / f"rclone-cache-{threads}"
    for system, reason, make, cache in (
            ("s3fs, default", common.tool_reason("s3fs"),
             lambda mnt: common.s3fs_mount(server, BUCKET, mnt, work), None),
            ("s3fs, read-tuned", common.tool_reason("s3fs"),
             lambda mnt: common.s3fs_mount(server, BUCKET, mnt, work, tuned=True), None),
            ("rclone --vfs-cache-mode full", common.tool_reason("rclone"),
             lambda mnt: common.rclone_mount(server, BUCKET, mnt, work, rclone_cache),
             rclone_cache)):
        tag = re.sub(r"[^a-z0-9]+", "-", system.lower()).strip("-")
        mnt = work / f"mnt-{tag}-{threads}"
        m = make(mnt)
        argv = [mtread, threads, write_list(work / f"list-{tag}-{threads}.txt",
                                            [f"{mnt}/{PREFIX}{rel}" for rel in ds.rels])]

        def prepare(m=m, cache=cache):
            if cache:
                empty_dir(cache)
            m.mount()

        def cleanup(m=m, cache=cache):
            m.unmount()
            if cache:
                shutil.rmtree(cache, ignore_errors=True)
        rows.append(Row(system, threads, argv, common.child_env(),
                        f"{m.shown()}  # then: {shown({}, argv)}; fusermount -u {mnt}", runs,
                        "fresh mount" + (", empty cache dir" if cache else "") +
                        ", page cache dropped",
                        prepare=prepare, cleanup=cleanup, mount=m, unavailable=reason))
    return rows


def object_rows(server, s3get, keys, threads, runs, alt_runs):
    ceiling = [s3get, server.endpoint, BUCKET, threads, keys]
    boto = [common.VENV_PY, Path(__file__).resolve(), "boto3-get", server.endpoint, BUCKET,
            threads, keys]
    env = server.child_env()
    return [
        Row(CEILING, threads, ceiling, env, shown({}, ceiling), runs,
            "page cache dropped (MinIO reads from disk)"),
        Row("boto3 thread pool", threads, boto, env, shown({}, boto), alt_runs,
            "page cache dropped (MinIO reads from disk)"),
    ]


def local_rows(mtread, lists, threads, runs):
    disk = [mtread, threads, lists["disk"]]
    tmpfs = [mtread, threads, lists["tmpfs"]]
    return [
        Row("local disk", threads, disk, common.child_env(), shown({}, disk), runs,
            "page cache dropped"),
        Row("tmpfs (/dev/shm)", threads, tmpfs, common.child_env(), shown({}, tmpfs), runs,
            "nothing to drop: both passes read memory"),
    ]


# -- measuring ----------------------------------------------------------------------------


def parse_reader(stdout):
    """(files, bytes, seconds) from mtread's or boto3-get's JSON line or s3get's line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            j = json.loads(line)
            return j["files"], j["bytes"], j["seconds"]
        m = S3GET_RE.search(line)
        if m:
            return int(m.group(1)), int(m.group(2)), float(m.group(3))
    return None


def du(path):
    """(apparent bytes, allocated bytes) of a tree, as du -sb and du -sB1 count them."""
    if not path.exists():
        return 0, 0
    out = []
    for opt in ("-sb", "-sB1"):
        text = common.run_text(["du", opt, str(path)])
        out.append(int(text.split()[0]) if text[:1].isdigit() else 0)
    return tuple(out)


def route_dir(cache_dir):
    """cache_dir/u<uid>/<route id>: where obj/, tree/, tmp/ and lists/ of our route live."""
    found = sorted(cache_dir.glob("u*/*/obj"))
    return found[0].parent if found else None


def cache_usage(cache_dir):
    """du of the whole cache_dir and of obj/ (what the budget counts)."""
    rd = route_dir(cache_dir)
    whole = du(cache_dir)
    obj = du(rd / "obj") if rd else (0, 0)
    return {"apparent": whole[0], "allocated": whole[1], "obj_apparent": obj[0],
            "obj_allocated": obj[1]}


def peak_rss_kib(path):
    """GNU time's %M (the last line of its -o file; a line before it tells of a non-zero
    status or a signal), or 0."""
    try:
        last = Path(path).read_text().strip().splitlines()[-1]
        return int(last)
    except (OSError, IndexError, ValueError):
        return 0


def one_pass(row, expect_files, expect_bytes, server_pid, timeout, env=None):
    """One timed pass of row. The reader runs under GNU time (-f %M): wait4's ru_maxrss in
    common.timed cannot be used, as Linux carries the forked Python parent's peak (~50 MiB)
    over exec into the child's, so every reader would show at least that."""
    daemon = row.mount.pid if row.mount else None
    if daemon:
        common.vm_hwm_kib(daemon, reset=True)
    rss_file = Path(tempfile.mkstemp(prefix="rwbench-many-rss-")[1])
    try:
        p = common.timed([GNU_TIME, "-f", "%M", "-o", str(rss_file)] +
                         [str(a) for a in row.argv], env or row.env, timeout=timeout,
                         server_pid=server_pid, daemon_pid=daemon, keep_stdout=True)
        p.max_rss_kib = peak_rss_kib(rss_file)   # the reader's (its tree's largest) peak
    finally:
        rss_file.unlink(missing_ok=True)
    # rwsplit rows: the fetch agent serves the reader as a FUSE daemon serves its mount.
    res = Result(p, daemon_rss_kib=common.vm_hwm_kib(daemon) or p.agent_rss_kib)
    got = parse_reader(p.stdout) if p.ok else None
    if p.ok and got is None:
        p.ok, p.note = False, f"no result line in its output: {p.stdout.strip()[:200]!r}"
    elif p.ok:
        res.files, res.bytes, res.read_s = got
        if (res.files, res.bytes) != (expect_files, expect_bytes):
            p.ok = False
            p.note = (f"read {res.files} files / {res.bytes} bytes, expected {expect_files} / "
                      f"{expect_bytes}")
    p.stdout = ""                   # parsed; not kept in the JSON
    if row.cache_dir:
        res.cache = cache_usage(row.cache_dir)
    return res


def describe(res):
    p = res.p
    s = f"{res.read_s:7.3f} s (wall {p.seconds:.3f} s)" if res.read_s else f"{p.seconds:.3f} s"
    s += f", RSS {p.max_rss_kib / 1024:.0f} MiB"
    if res.daemon_rss_kib:
        s += f", daemon {res.daemon_rss_kib / 1024:.0f} MiB"
    return s + ("" if p.ok else f"  FAILED {p.note}")


def measure(rows, runs, ds, drop_ok, server_pid, timeout):
    """Round r runs every row with runs > r: prepare, drop caches, cold pass, warm pass,
    cleanup. Rounds interleave the rows so drift hits them alike."""
    for r in range(runs):
        log(f"round {r + 1}/{runs}, load average {common.load_average()}")
        for row in rows:
            if row.unavailable or row.runs <= r:
                continue
            try:
                if row.prepare:
                    row.prepare()
                if drop_ok:
                    common.drop_caches()
                for kind in ("cold", "warm") if row.warm else ("cold",):
                    res = one_pass(row, len(ds.rels), ds.total_bytes, server_pid, timeout)
                    row.passes[kind].append(res)
                    log(f"run {r + 1} {row.name:44s} {kind}: {describe(res)}")
            except Exception as e:   # noqa: BLE001 - recorded, the other rows go on
                row.passes["cold"].append(Result(Pass(0.0, False, f"setup failed: {e}")))
                log(f"run {r + 1} {row.name}: setup failed: {e}")
            finally:
                if row.cleanup:
                    row.cleanup()


# -- memory: a budget smaller than the data set --------------------------------------------


@dataclass
class MemoryRun:
    budget: int
    results: dict = field(default_factory=dict)    # "cold"/"warm" -> Result
    obj_peak: dict = field(default_factory=dict)   # "cold"/"warm" -> max sampled obj/ bytes
    all_peak: dict = field(default_factory=dict)   # the same for obj/ + tmp/
    samples: dict = field(default_factory=dict)    # "cold"/"warm" -> number of samples
    summary: str = ""                               # the reader's read summary lines
    problems: list = field(default_factory=list)    # warn/error lines of its log


def allocated(path):
    """Allocated bytes of the regular files directly in path (no subdirectories), each inode
    once: tmpfs on Linux 6.18 was seen listing half of obj/'s entries twice in one pass while
    the readers renamed into it and evicted from it, which made a 625 MiB cache look 1184."""
    seen = {}
    try:
        with os.scandir(path) as it:
            for e in it:
                try:
                    seen[e.inode()] = e.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    pass             # evicted or renamed while we looked
    except OSError:
        pass
    return sum(seen.values())


class Sampler(threading.Thread):
    """Every SAMPLE_EVERY seconds: allocated bytes of obj/ (what the budget counts) and of
    obj/ + tmp/ (with the downloads in flight); keeps the peaks."""

    def __init__(self, cache_dir):
        super().__init__(daemon=True)
        self.cache_dir, self.stop = cache_dir, threading.Event()
        self.obj_peak = self.all_peak = self.count = 0

    def run(self):
        rd = None
        while not self.stop.wait(SAMPLE_EVERY):
            rd = rd or route_dir(self.cache_dir)
            if rd:
                obj = allocated(rd / "obj")
                self.obj_peak = max(self.obj_peak, obj)
                self.all_peak = max(self.all_peak, obj + allocated(rd / "tmp"))
                self.count += 1


def memory_run(row, ds, work, drop_ok, server_pid, timeout):
    """The small-budget row once cold and once warm, with RWSPLIT_LOG=info into a log file
    (for its read summary: evictions) and the cache sampled while it reads."""
    out = MemoryRun(row.budget)
    empty_dir(row.cache_dir)
    if drop_ok:
        common.drop_caches()
    logs = []
    for kind in ("cold", "warm"):
        lf = work / f"memory-{kind}.log"
        logs.append(lf)
        env = dict(row.env, RWSPLIT_LOG="info", RWSPLIT_LOG_FILE=str(lf))
        sampler = Sampler(row.cache_dir)
        sampler.start()
        try:
            res = one_pass(row, len(ds.rels), ds.total_bytes, server_pid, timeout, env=env)
        finally:
            sampler.stop.set()
            sampler.join(timeout=10)
        row.passes[kind].append(res)
        out.results[kind], out.samples[kind] = res, sampler.count
        out.obj_peak[kind], out.all_peak[kind] = sampler.obj_peak, sampler.all_peak
        log(f"memory run {kind}: {describe(res)}; obj/ peak {sampler.obj_peak / MiB:.0f} MiB, "
            f"obj/+tmp/ peak {sampler.all_peak / MiB:.0f} MiB over {sampler.count} samples, "
            f"obj/ after {res.cache['obj_allocated'] / MiB:.0f} MiB, "
            f"budget {row.budget / MiB:.0f} MiB")
    text = "\n".join(lf.read_text(errors="replace") for lf in logs if lf.exists())
    out.summary = "; ".join(m.split("] ", 1)[-1] for m in re.findall(r"^.*read summary.*$",
                                                                      text, re.M))
    out.problems = [ln for ln in text.splitlines() if " error" in ln or " warn" in ln][:5]
    return out


# -- correctness (untimed) ----------------------------------------------------------------


@dataclass
class Check:
    label: str
    files: int
    wrong: list
    missing: list
    rc: int
    err: list


def sha_check(label, env, paths, want):
    """sha256sum of paths (xargs -P4 -n 50) in env, compared with want {path: hex}."""
    listf = Path(tempfile.mkstemp(prefix="rwbench-many-sample-")[1])
    write_list(listf, paths)
    try:
        p = subprocess.run(["xargs", "-a", str(listf), "-P4", "-n", "50", "sha256sum"], env=env,
                           capture_output=True, timeout=common.PASS_TIMEOUT)
    finally:
        listf.unlink(missing_ok=True)
    got = {}
    for line in p.stdout.decode(errors="replace").splitlines():
        digest, _, path = line.partition("  ")
        got[path] = digest
    wrong = sorted(k for k in want if k in got and got[k] != want[k])
    missing = sorted(set(want) - set(got))
    c = Check(label, len(got), wrong, missing, p.returncode,
              p.stderr.decode(errors="replace").strip().splitlines()[:3])
    log(f"check {label}: {len(got)} hashed, {len(wrong)} wrong, {len(missing)} missing, "
        f"status {p.returncode}")
    return c


def sample_want(ds, rels):
    return {f"{ROUTE}/{rel}": hashlib.sha256((ds.disk / rel).read_bytes()).hexdigest()
            for rel in rels}


# -- report -------------------------------------------------------------------------------


def ok_results(row, kind):
    return [r for r in row.passes[kind] if r.p.ok]


def med_of(row, kind, attr):
    v = [getattr(r, attr) if hasattr(r, attr) else getattr(r.p, attr)
         for r in ok_results(row, kind)]
    return statistics.median(v) if v else None


def rate(row, kind, nfiles, total):
    """(median read seconds, files/s, MB/s) at the median, or Nones."""
    m = med_of(row, kind, "read_s")
    return (m, nfiles / m, total / 1e6 / m) if m else (None, None, None)


def mib(kib):
    return "–" if not kib else f"{kib / 1024:.0f}"


def results_table(rows, ds):
    L = ["| threads | row | pass | median s | min s | max s | files/s | MB/s | wall s "
         "(median) | peak RSS of the reader, MiB | peak RSS of the FUSE daemon or rwsplit's "
         "fetch agent, MiB | ok runs |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row.unavailable:
            L.append(f"| {row.threads} | {row.system} | | unavailable: {row.unavailable} "
                     "| | | | | | | | |")
            continue
        for kind in ("cold", "warm"):
            oks = ok_results(row, kind)
            m, lo, hi = common.stats([r.read_s for r in oks])
            _, fps, mbs = rate(row, kind, len(ds.rels), ds.total_bytes)
            rss = med_of(row, kind, "max_rss_kib")
            drss = med_of(row, kind, "daemon_rss_kib")
            L.append(f"| {row.threads} | {row.system} | {kind} | {fmt(m)} | {fmt(lo)} | "
                     f"{fmt(hi)} | {fmt(fps, 0)} | {fmt(mbs, 0)} | "
                     f"{fmt(med_of(row, kind, 'seconds'))} | {mib(rss)} | {mib(drss)} | "
                     f"{len(oks)}/{len(row.passes[kind])} |")
    return L


def cpu_table(rows):
    L = ["| threads | row | pass | reader CPU s (+ FUSE daemon or fetch agent) | MinIO CPU s | "
         "rest of machine CPU s | steal s |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        if row.unavailable:
            continue
        for kind in ("cold", "warm"):
            cells = [fmt(med_of(row, kind, a), 2) for a in
                     ("client_cpu", "server_cpu", "other_cpu", "steal")]
            L.append(f"| {row.threads} | {row.system} | {kind} | " + " | ".join(cells) + " |")
    return L


def find(rows, system, threads):
    return next((r for r in rows if r.system == system and r.threads == threads), None)


def their_rate(row, kind, ds):
    """(files/s at the median, False), or, when every pass of row timed out, (an upper bound
    of its files/s: all files over the shortest time it ran without finishing, True), or
    (None, False)."""
    if row is None:
        return None, False
    fps = rate(row, kind, len(ds.rels), ds.total_bytes)[1]
    if fps:
        return fps, False
    out = [r.p.seconds for r in row.passes[kind] if r.p.note.startswith("timed out")]
    return (len(ds.rels) / min(out), True) if out else (None, False)


def ratio_tables(rows, ds):
    """rwsplit's files/s over every other row's, per thread count and pass, and the targets."""
    others = [s for s in dict.fromkeys(r.system for r in rows)
              if s not in (RWSPLIT, SMALL_BUDGET)]
    L = ["A ratio is rwsplit's files/s over the other row's at the medians (the same as the "
         "other row's seconds over rwsplit's): above 1 means rwsplit is faster. \"≥\" marks a "
         "lower bound against a row whose every pass timed out (its files/s taken as all files "
         "over the time it ran without finishing).\n",
         "| threads, pass | " + " | ".join(others) + " |",
         "|---|" + "---|" * len(others)]
    targets = []
    for threads in THREADS:
        rw = find(rows, RWSPLIT, threads)
        for kind in ("cold", "warm"):
            mine = rate(rw, kind, len(ds.rels), ds.total_bytes)[1] if rw else None
            cells = []
            for s in others:
                theirs, bound = their_rate(find(rows, s, threads), kind, ds)
                cells.append(("≥ " if bound and mine else "") + common.ratio(mine, theirs))
            L.append(f"| {threads}, {kind} | " + " | ".join(cells) + " |")
            targets += target_lines(rows, threads, kind, mine, ds)
    L += ["", "DESIGN.md targets (stated for `find | xargs -P4 cat`; applied here to the same "
          "reads with many threads):\n", "| threads, pass | target | ratio | verdict |",
          "|---|---|---|---|"] + targets
    return L


def target_lines(rows, threads, kind, mine, ds):
    def other(system, k):
        return their_rate(find(rows, system, threads), k, ds)
    checks = ([("≥ 0.8× the ceiling (s3get)", 0.8, other(CEILING, "cold")),
               ("≥ 3× s3fs-fuse (default options)", 3.0, other("s3fs, default", "cold")),
               ("≥ 3× s3fs-fuse (read-tuned)", 3.0, other("s3fs, read-tuned", "cold"))]
              if kind == "cold" else
              [("≥ 0.5× local page-cache reads (local disk, warm)", 0.5,
                other("local disk", "warm"))])
    out = []
    for label, need, (theirs, bound) in checks:
        if not mine or not theirs:
            out.append(f"| {threads}, {kind} | {label} | – | n/a (a side failed or is "
                       "unavailable) |")
            continue
        r = mine / theirs
        if bound:
            verdict = "met (the other side timed out)" if r >= need else \
                "unknown (the other side timed out)"
            out.append(f"| {threads}, {kind} | {label} | ≥ {r:.2f}× | {verdict} |")
            continue
        verdict = "met" if r >= need else f"**missed** by {(need - r) / need * 100:.0f}% " \
            f"({r:.2f}× of {need}×)"
        out.append(f"| {threads}, {kind} | {label} | {r:.2f}× | {verdict} |")
    return out


def memory_section(rows, mem, ds):
    L = ["Peak RSS of the reading process (mtread, s3get or the boto3 Python process; GNU "
         "`time -f %M`, medians) and, for FUSE rows, of the daemon serving it, for rwsplit "
         "rows of its fetch agent (VmHWM, reset before each pass). rwsplit's cache is files in tmpfs read with read(): their pages "
         "are shared memory (Shmem in /proc/meminfo), in nobody's RSS, so the cache is "
         "measured separately below.\n",
         "| row | threads | reader cold, MiB | reader warm, MiB | FUSE daemon or fetch agent "
         "cold, MiB | FUSE daemon or fetch agent warm, MiB |", "|---|---|---|---|---|---|"]
    for row in rows:
        if row.unavailable or row.system == SMALL_BUDGET:
            continue
        L.append(f"| {row.system} | {row.threads} | " + " | ".join(
            mib(med_of(row, k, a)) for a in ("max_rss_kib", "daemon_rss_kib")
            for k in ("cold", "warm")) + " |")
    L += ["", "rwsplit's cache after each pass (du of cache_dir, last successful run): "
          "*apparent* counts the shadow tree's sparse placeholders at their objects' sizes, "
          "*allocated* the tmpfs pages really used; obj/ holds the objects, which is what the "
          "budget counts.\n",
          "| row | pass | cache_dir apparent, MiB | cache_dir allocated, MiB | "
          "obj/ allocated, MiB | budget, MiB |", "|---|---|---|---|---|---|"]
    for row in rows:
        if not row.system.startswith("rwsplit"):
            continue
        for kind in ("cold", "warm"):
            oks = ok_results(row, kind)
            c = oks[-1].cache if oks and oks[-1].cache else None
            cells = (" | ".join(f"{c[k] / MiB:.0f}" for k in
                                ("apparent", "allocated", "obj_allocated")) if c else "– | – | –")
            L.append(f"| {row.name} | {kind} | {cells} | {row.budget / MiB:.0f} |")
    return L + small_budget_section(rows, mem, ds)


def memory_verdict(resident):
    """Met or missed (by how much) for DESIGN.md's ≤ 64 MiB beyond the cache budget."""
    return "met" if resident <= MEMORY_TARGET else \
        f"**missed** by {(resident - MEMORY_TARGET) / MiB:.0f} MiB"


def small_budget_section(rows, mem, ds):
    if mem is None:
        return ["", "The small-budget run did not run."]
    loc = find(rows, "local disk", 128)
    base = med_of(loc, "cold", "max_rss_kib") if loc else None
    L = ["", f"**Cache budget smaller than the data set**: {len(ds.rels)} files "
         f"({ds.total_bytes / MiB:.0f} MiB), route budget `cache = {mem.budget // MiB}MiB` (a "
         "quarter), 128 threads, one cold and one warm pass, RWSPLIT_LOG=info. A thread "
         f"sampled the allocated bytes of obj/ and of tmp/ (downloads in flight) every "
         f"{SAMPLE_EVERY} s while it read. *Beyond the budget* is the reader's peak RSS, plus "
         "the fetch agent's (rwsplit's reads go through it), plus "
         "whatever the cache held over its budget at its peak (obj/ + tmp/), the quantity the "
         "DESIGN.md target bounds (resident memory ≤ 64 MiB beyond the cache budget). The same "
         "mtread with 128 threads on local disk peaked at "
         f"{mib(base)} MiB (its threads and buffers), so rwsplit's own share is the "
         "difference.\n",
         "| pass | ok | reader peak RSS, MiB | fetch agent peak RSS, MiB | obj/ peak, MiB | obj/ + tmp/ peak, MiB "
         "(samples) | obj/ after, MiB | cache_dir allocated after, MiB | obj/ within budget "
         "| beyond the budget, MiB | target ≤ 64 MiB | less the local-disk reader's RSS, "
         "MiB | target, rwsplit's share only |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind in ("cold", "warm"):
        res = mem.results.get(kind)
        if res is None:
            continue
        c = res.cache or {"obj_allocated": 0, "allocated": 0}
        obj_worst = max(mem.obj_peak[kind], c["obj_allocated"])
        within = "yes" if obj_worst <= mem.budget else \
            f"**no**, over by {(obj_worst - mem.budget) / MiB:.1f} MiB"
        beyond = (res.p.max_rss_kib + res.daemon_rss_kib) * 1024 + \
            max(0, mem.all_peak[kind] - mem.budget)
        share = beyond - base * 1024 if base else None
        L.append(f"| {kind} | {'yes' if res.p.ok else 'FAILED: ' + res.p.note} | "
                 f"{mib(res.p.max_rss_kib)} | {mib(res.daemon_rss_kib)} | "
                 f"{mem.obj_peak[kind] / MiB:.0f} | "
                 f"{mem.all_peak[kind] / MiB:.0f} ({mem.samples[kind]}) | "
                 f"{c['obj_allocated'] / MiB:.0f} | {c['allocated'] / MiB:.0f} | {within} | "
                 f"{beyond / MiB:.0f} | {memory_verdict(beyond)} | "
                 f"{'–' if share is None else f'{share / MiB:.0f}'} | "
                 f"{'–' if share is None else memory_verdict(share)} |")
    if mem.summary:
        L += ["", f"The reader's read summaries (cold; warm): `{mem.summary}`"]
    if mem.problems:
        L += ["", "Warnings and errors in its log:", ""] + [f"- `{p}`" for p in mem.problems]
    return L


def correctness_section(checks, rows):
    L = ["| check | files hashed | wrong | missing | exit status |", "|---|---|---|---|---|"]
    for c in checks:
        L.append(f"| {c.label} | {c.files} | {len(c.wrong)} | {len(c.missing)} | {c.rc} |")
    bad = [c for c in checks if c.wrong or c.missing or c.rc]
    for c in bad:
        L.append(f"\n{c.label}: wrong {c.wrong[:5]}, missing {c.missing[:5]}, stderr {c.err}")
    L += ["", "Every timed pass was also checked for the number of files and bytes its reader "
          "reported; a pass that read fewer is a failed pass."]
    return L


def plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def write_report(out, args, cmdline, facts, rows, mem, checks, ds, conf_text, elapsed):
    runs_note = (f"rwsplit, the ceiling, local disk and tmpfs {plural(args.runs, 'run')} each; "
                 f"s3fs, rclone and boto3 {plural(args.alt_runs, 'run')} each (they are the slow rows: the whole script has to fit in about five "
                 "minutes on this machine)")
    L = ["# rwsplit benchmark: many small files at high concurrency, and memory (issue 6, "
         "workloads 2 and 7)\n",
         f"Generated by `{cmdline}` in {elapsed:.0f} s. Do not edit by hand: run it again.\n",
         f"The data set: {len(ds.rels)} objects of {FILE_BYTES // 1024} KiB ({FILE_BYTES} "
         f"random bytes; {ds.total_bytes / 1e6:.0f} MB) in {NDIRS} directories, uploaded once "
         f"with `mc cp --recursive` to `s3://{BUCKET}/{PREFIX}` on one MinIO on 127.0.0.1. "
         "Every row reads all of them with 32 and with 128 threads of one process: the file "
         "rows with `bench/mtread.c` (each thread takes the next path of a list and opens, "
         "reads fully with 1 MiB read() calls, closes it), the object rows with GETs of every "
         f"key. Cold, then warm right after; {runs_note}; rounds interleave the rows. Before "
         "every cold pass: `sync; echo 3 > /proc/sys/vm/drop_caches`. Seconds are the "
         "reader's own, first request to last byte (*wall* is the process's); files/s and MB/s "
         f"(10^6 bytes) at the median. A pass over {args.pass_timeout} s is killed and "
         "counted failed.\n",
         "## Machine\n", "| | |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in facts]
    L += ["", "## rwsplit config\n", "```ini", conf_text.rstrip("\n"), "```", "",
          "## Results\n"] + results_table(rows, ds)
    L += ["", "## CPU (medians)\n", "CPU seconds during each pass: the reader's process tree "
          "(plus the FUSE daemon for s3fs and rclone, the fetch agent for rwsplit), MinIO, "
          "everything else on the machine (kernel threads, other programs: the machine may be "
          "shared), hypervisor steal.\n"]
    L += cpu_table(rows)
    L += ["", "## Ratios\n"] + ratio_tables(rows, ds)
    L += ["", "## Memory (workload 7)\n"] + memory_section(rows, mem, ds)
    L += ["", "## Correctness\n"] + correctness_section(checks, rows)
    failures = [(row.name, kind, i + 1, res.p.note) for row in rows for kind in ("cold", "warm")
                for i, res in enumerate(row.passes[kind]) if not res.p.ok]
    L += ["", "## Failed passes\n"]
    if failures:
        L.append("Left out of the statistics above.\n")
        L += [f"- {name}, {kind}, run {i}: {note}" for name, kind, i, note in failures]
    else:
        L.append("None.")
    L += ["", "## Exact commands\n",
          "Run directly (no shell) from the repository root; paths are this run's temp dirs. "
          "What *cold* means for each row is in brackets.\n"]
    seen = set()
    for row in rows:
        if row.name not in seen:
            seen.add(row.name)
            L.append(f"- **{row.name}** ({row.cold_means}): `{row.command}`")
    L += ["", "## Every pass (reader seconds; x = failed)\n", "| row | cold | warm |",
          "|---|---|---|"]
    for row in rows:
        if not row.unavailable:
            cells = [", ".join(f"{r.read_s or r.p.seconds:.3f}" + ("" if r.p.ok else "x")
                               for r in row.passes[k]) for k in ("cold", "warm")]
            L.append(f"| {row.name} | {cells[0]} | {cells[1]} |")
    replace_section(out, SECTION, "\n".join(L))


def save_results(rows, mem, ds):
    groups = []
    for threads in THREADS:
        for kind in ("cold", "warm"):
            values = {}
            for row in rows:
                if row.threads == threads and not row.unavailable and \
                        row.system != SMALL_BUDGET:
                    fps = rate(row, kind, len(ds.rels), ds.total_bytes)[1]
                    if fps:
                        values[row.system] = round(fps, 1)
            groups.append({"label": f"{threads} threads {kind}", "values": values})
    common.save_json("many_files", {
        "title": f"{len(ds.rels)} files of 128 KiB, N threads of one process",
        "unit": "files/s", "lower_is_better": False, "groups": groups,
        "files": len(ds.rels), "file_bytes": FILE_BYTES,
        "rows": [{"system": r.system, "threads": r.threads, "command": r.command,
                  "unavailable": r.unavailable, "passes": r.passes} for r in rows]})
    mem_groups = []
    for threads in THREADS:
        values = {}
        for row in rows:
            if row.threads != threads or row.unavailable or row.system == SMALL_BUDGET:
                continue
            rss = med_of(row, "cold", "max_rss_kib")
            drss = med_of(row, "cold", "daemon_rss_kib")
            if rss:
                label = row.system + (" (reader + daemon)" if drss else "")
                values[label] = round((rss + (drss or 0)) / 1024, 1)
        mem_groups.append({"label": f"{threads} threads cold", "values": values})
    if mem and mem.results.get("cold"):
        mem_groups.append({"label": "rwsplit, budget = ¼ of the data, 128 threads", "values": {
            "reader peak RSS": round(mem.results["cold"].p.max_rss_kib / 1024, 1),
            "cache obj/ + tmp/ peak (tmpfs)": round(mem.all_peak["cold"] / MiB, 1),
            "budget": round(mem.budget / MiB, 1)}})
    common.save_json("memory", {"title": "Peak resident memory while reading (cold pass)",
                                "unit": "MiB", "lower_is_better": True, "groups": mem_groups,
                                "memory_run": mem})


# -- main ---------------------------------------------------------------------------------

def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, help="number of 128 KiB files (default 20000; "
                    "2000 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke test: 2000 files, 1 run, unless --files / --runs say more")
    ap.add_argument("--runs", type=int, help="runs of rwsplit, ceiling, local rows (default 3)")
    ap.add_argument("--alt-runs", type=int, default=1,
                    help="runs of the s3fs, rclone and boto3 rows (default 1)")
    ap.add_argument("--alt-warm", action="store_true",
                    help="warm passes for s3fs, rclone and boto3 too (default: cold only, "
                         "to fit the run in about ten minutes)")
    ap.add_argument("--pass-timeout", type=int, default=60,
                    help="seconds; a longer pass is killed and counted failed (default 60)")
    ap.add_argument("--sample", type=int, default=500, help="files sha256-checked (500)")
    ap.add_argument("--build", type=Path, default=Path("build"),
                    help="the build dir holding lib/librwsplit.so (default build)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--seed", type=int, default=20240607, help="for the sample's choice")
    a = ap.parse_args(argv)
    a.files = a.files or (2000 if a.quick else 20000)
    a.runs = a.runs or (1 if a.quick else 3)
    if not NDIRS <= a.files <= 200_000 or not 1 <= a.runs <= 20 or not 1 <= a.alt_runs <= 20:
        ap.error(f"--files must be {NDIRS}..200000, --runs and --alt-runs 1..20")
    return a


def make_rows(server, lib, work, shm, mtread, s3get, lists, keys, ds, args):
    rows = []
    for threads in THREADS:
        ceiling, boto = object_rows(server, s3get, keys, threads, args.runs, args.alt_runs)
        rows += [ceiling,
                 rwsplit_row(server, lib, work, shm, mtread, lists, threads, args.runs,
                             2 * ds.total_bytes, f"t{threads}", RWSPLIT)]
        alternatives = fuse_rows(server, work, mtread, ds, threads, args.alt_runs) + [boto]
        for row in alternatives:
            row.warm = args.alt_warm
        rows += alternatives + local_rows(mtread, lists, threads, args.runs)
    return rows


def facts(lib, drop_ok, work, shm, server):
    gcc = common.first_line(["gcc", "--version"])
    return common.host_facts() + common.tool_facts() + [
        ("gcc (mtread, s3get)", gcc),
        ("GNU time (peak RSS)", common.first_line([GNU_TIME, "--version"])),
        ("rwsplit", common.lib_fact(lib)),
        ("load average at start", common.load_average()),
        ("drop_caches", "works (before every cold pass)" if drop_ok else
         "does NOT work here: cold passes start with the page cache as it is"),
        ("local disk dir", f"{work / 'local'} ({common.fs_type(work)})"),
        ("tmpfs dir, rwsplit cache_dir", f"{shm} ({common.fs_type(shm)})"),
        ("rclone cache dir", f"{work} ({common.fs_type(work)})"),
        ("MinIO data", f"{server.data_dir} ({common.fs_type(server.data_dir)})"),
    ]


def run(args, cmdline, started):
    lib = (args.build if args.build.is_absolute() else REPO / args.build) / "lib" / \
        "librwsplit.so"
    if not lib.exists():
        raise SystemExit(f"{lib} is missing: run make first")
    if not os.access(GNU_TIME, os.X_OK):
        raise SystemExit(f"{GNU_TIME} is missing: apt-get install time")
    work = Path(tempfile.mkdtemp(prefix="rwbench-many-", dir="/var/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="rwbench-many-", dir="/dev/shm"))
    server = None
    try:
        drop_ok = common.drop_caches()
        mtread = common.build_tool(work, "mtread", ["-pthread"])
        s3get = common.build_tool(work, "s3get", ["-lcurl"])
        log(f"generating {args.files} files of {FILE_BYTES} bytes")
        ds = make_dataset(work, shm, args.files)
        lists = {"rwsplit": write_list(work / "list-rwsplit.txt",
                                       [f"{ROUTE}/{rel}" for rel in ds.rels]),
                 "disk": write_list(work / "list-disk.txt", [ds.disk / r for r in ds.rels]),
                 "tmpfs": write_list(work / "list-tmpfs.txt", [ds.shm / r for r in ds.rels])}
        keys = write_list(work / "keys.txt", [f"{PREFIX}{rel} {FILE_BYTES}" for rel in ds.rels])
        server = MinioServer().start()
        with Mc(server) as mc:
            t0 = time.monotonic()
            log(f"uploading to {server.endpoint} with {MC_BIN.name} cp --recursive")
            upload(mc, server, ds)
            log(f"uploaded in {time.monotonic() - t0:.1f} s")
        host = facts(lib, drop_ok, work, shm, server)
        rows = make_rows(server, lib, work, shm, mtread, s3get, lists, keys, ds, args)
        measure(rows, max(args.runs, args.alt_runs), ds, drop_ok, server.pid,
                args.pass_timeout)

        small = rwsplit_row(server, lib, work, shm, mtread, lists, 128, 1,
                            max(MiB, ds.total_bytes // 4 // MiB * MiB), "small", SMALL_BUDGET)
        mem = memory_run(small, ds, work, drop_ok, server.pid, args.pass_timeout)

        rels = random.Random(args.seed).sample(ds.rels, min(args.sample, len(ds.rels)))
        want = sample_want(ds, rels)
        rw = find(rows, RWSPLIT, THREADS[0])
        checks = []
        rw.prepare()
        for label in ("rwsplit, empty cache", "rwsplit, warm"):
            checks.append(sha_check(label, rw.env, list(want), want))
        checks.append(sha_check("rwsplit, budget = ¼, after its run (evicted objects "
                                "fetched again)", small.env, list(want), want))
        rows.append(small)
        host.append(("load average at end", common.load_average()))
        conf_text = (work / f"rwsplit-t{THREADS[0]}.conf").read_text()
        write_report(args.out, args, cmdline, host, rows, mem, checks, ds,
                     conf_text, time.monotonic() - started)
        save_results(rows, mem, ds)
        log(f"wrote {args.out} and {common.RESULTS_JSON}/many_files.json, memory.json in "
            f"{time.monotonic() - started:.0f} s")
        return 0
    finally:
        common.release(server, None, shm, work)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["boto3-get"]:
        return boto3_get(argv[1:])
    args = parse_args(argv)
    cmdline = common.command_line("many_files.py", argv)
    signal.signal(signal.SIGTERM, _raise_exit)
    return run(args, cmdline, time.monotonic())


if __name__ == "__main__":
    sys.exit(main())
