#!/usr/bin/env python3
"""Small-file read benchmark (issue 6, workload 1): thousands of 80–140 KB objects read cold
and warm with two commands,

    find ROOT -type f | xargs -P4 -n 50 cat > /dev/null
    find ROOT/d0 -type f | sort | head -n 500 | parallel -j4 cp {} /dev/null

through rwsplit (prefetch = listing and all), s3fs-fuse (default and read-tuned options),
rclone mount --vfs-cache-mode full, local disk and tmpfs, next to what a program gets without
any file system: the server's ceiling (bench/s3get.c, libcurl multi, 16 GETs in flight) and
boto3 with a thread pool (bench/boto3_read.py, 16 threads). Everything runs against one
throw-away MinIO on 127.0.0.1 (tests/harness/minio.py) started and stopped here.

    .tools/venv/bin/python bench/small_files.py [--files 8000] [--runs 3] [--alt-runs 1]
        [--cp-files 500] [--out bench/RESULTS.md] [--build build] [--seed N] [--no-s3fs]
        [--quick]

--quick is a trial: 800 files, 1 run, parallel cp over 100 files. --build DIR: the library is
DIR/lib/librwsplit.so, used as it is (this script builds only bench/s3get.c).

Rows (what *cold* means; *warm* is the same command again right after, same mount or cache):
- ceiling: s3get, 16 GETs in flight: keys from a file (no LIST), every object read and
  dropped. Cold: page cache dropped, so MinIO reads from disk; warm: MinIO's files cached.
- boto3, 16 threads: bench/boto3_read.py, a LIST then ThreadPoolExecutor(16) GETs with bodies
  read fully; interpreter start included. Cold and warm as for the ceiling.
- rwsplit, prefetch = listing / all: LD_PRELOAD=DIR/lib/librwsplit.so, cache_dir in /dev/shm,
  a read route /mnt/rwbench/data -> s3://rwbench/data/. Cold: empty cache_dir, page cache
  dropped. `all` lists the whole route at first use and warms the cache in the background.
- s3fs, default / read-tuned options (kernel_cache, max_stat_cache_size, parallel_count=20),
  rclone mount --vfs-cache-mode full with its cache dir in /dev/shm like rwsplit's. Cold: a
  fresh mount (rclone: with an empty cache dir), page cache dropped; unmounted after warm.
- local disk (cold: page cache dropped) and tmpfs (memory both times).

The parallel cp command starts a process per file (GNU parallel runs `bash -c 'cp FILE
/dev/null'`, bash execs cp), several ms of CPU each whatever the file system, so it reads
only --cp-files files and runs only for rwsplit (listing), s3fs (default), rclone and local
disk: the parts that are about per-process cost. s3get and boto3 have no files: they appear
only in the xargs cat table, and are the references of both ratio tables.

Rounds interleave the rows (--runs rounds; per row: prepare, drop caches, cold, warm, clean
up). The s3fs, rclone and boto3 rows take part in the first --alt-runs rounds only (default 1):
at 8000 files each of their passes takes 20-60 s on 2 cores, and three rounds of them would
double the run time (about 10 minutes with one). Every timed command runs under GNU time for
its peak RSS. After the timed runs (untimed): sha256 of every file through each rwsplit row,
cold and warm, in the xargs shape, and of the cp files in the parallel shape, with the
RWSPLIT_LOG=info summary lines summed; 50 random files through fresh s3fs and rclone mounts;
s3get and boto3 passes must report every object and byte or they count as failed. Then the
start-up cost of the preloaded library. The report goes to --out (section `small-files`), the
medians to bench/results/small_files.json (xargs cat) and small_files_cp.json (parallel cp) for
bench/chart.py.
"""

import argparse
import hashlib
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
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (GNU_TIME, PASS_TIMEOUT, VENV_PY, Pass,  # noqa: E402
                          drop_caches, empty_dir, env_line, fmt, fs_type, host_facts, lib_fact,
                          build_tool, load_average, log, ratio, rclone_mount, release, run_text,
                          rwsplit_env, s3fs_mount, save_json, stats, timed, tool_facts,
                          tool_reason, upload_tree, vm_hwm_kib)
from bench.results_md import replace_section  # noqa: E402
from tests.harness.minio import MC_BIN, Mc, MinioServer, child_env  # noqa: E402

BOTO3_READ = REPO / "bench" / "boto3_read.py"
ROUTE = "/mnt/rwbench/data"         # the rwsplit read route (nothing exists there on disk)
BUCKET = "rwbench"
PREFIX = "data/"
NDIRS = 4
SIZE_MIN, SIZE_MAX = 80_000, 140_000  # bytes; "KB" and "MB" below are powers of 1000
CAT_CMD = "find {root} -type f | xargs -P4 -n 50 cat > /dev/null"
# The first n names of d0 in sorted order: the same files on every system.
CP_CMD = "find {root}/d0 -type f | sort | head -n {n} | parallel -j4 cp {{}} /dev/null"
PANELS = {"cat": "xargs cat", "cp": "parallel cp"}
THREADS = 16                        # s3get GETs in flight, boto3 pool size
STARTUP_N = 100                     # processes started by each start-up cost loop
SECTION = "small-files"

CEILING = f"ceiling: s3get, {THREADS} GETs in flight"
BOTO3 = f"boto3, {THREADS} threads"
RW_LISTING = "rwsplit, prefetch = listing"
RW_ALL = "rwsplit, prefetch = all"
S3FS = "s3fs, default options"
S3FS_TUNED = "s3fs, read-tuned options"
RCLONE = "rclone mount, vfs-cache-mode full"
LOCAL = "local disk"
TMPFS = "tmpfs (/dev/shm)"
CP_SYSTEMS = (RW_LISTING, S3FS, RCLONE, LOCAL)       # the rows that also run parallel cp
NATIVE = (CEILING, BOTO3)                             # no files, so no cp row
SLOW_ALTERNATIVES = (BOTO3, S3FS, S3FS_TUNED, RCLONE)  # --alt-runs rounds only
ALTERNATIVES = {CEILING: "ceiling", S3FS: "s3fs", S3FS_TUNED: "s3fs tuned", RCLONE: "rclone",
                BOTO3: "boto3", LOCAL: "local disk", TMPFS: "tmpfs"}      # short names


# -- data set -----------------------------------------------------------------------------


@dataclass
class Dataset:
    root: Path                     # .../data, holding d0..d3
    files: list                    # (relative path, size, sha256 hex)

    def cp_files(self, n):
        """What CP_CMD reads: the first n files of d0 by name."""
        return sorted(f for f in self.files if f[0].startswith("d0/"))[:n]


def total(files):
    return sum(size for _, size, _ in files)


def make_dataset(root, nfiles, seed):
    """nfiles random-byte files of SIZE_MIN..SIZE_MAX bytes in NDIRS directories."""
    rng = random.Random(seed)
    files = []
    for d in range(NDIRS):
        (root / f"d{d}").mkdir(parents=True, exist_ok=True)
    for i in range(nfiles):
        rel = f"d{i % NDIRS}/f{i // NDIRS:05d}.bin"
        data = rng.randbytes(rng.randint(SIZE_MIN, SIZE_MAX))
        (root / rel).write_bytes(data)
        files.append((rel, len(data), hashlib.sha256(data).hexdigest()))
    return Dataset(root, files)


def upload(mc, server, dataset):
    """mc cp --recursive into s3://BUCKET/data/, then checks the listing."""
    upload_tree(mc, server, dataset.root, BUCKET, PREFIX, len(dataset.files),
                       total(dataset.files), timeout=900)


# -- what is measured ---------------------------------------------------------------------


@dataclass
class Row:
    """One system reading the data set with one command. panel: "cat" (xargs cat, or a native
    client reading everything) or "cp" (parallel cp of the cp directories). prepare() runs
    before each cold pass (untimed), cleanup() after the warm pass. verify(pass) returns why a
    pass that exited 0 is still wrong, or ""."""
    system: str
    panel: str
    command: str                   # exactly what was timed, as a shell line
    argv: list
    env: dict
    files: list                    # the Dataset.files entries this row reads
    prepare: object = None
    cleanup: object = None
    cold_means: str = ""
    unavailable: str = ""
    daemon: object = None          # a FuseMount whose daemon's CPU counts as the client's
    verify: object = None
    passes: dict = field(default_factory=lambda: {"cold": [], "warm": []})
    daemon_hwm_kib: list = field(default_factory=list)   # FUSE daemon's VmHWM per round

    @property
    def nbytes(self):
        return total(self.files)


def shell_row(system, panel, cmd_fmt, root, env, files, env_shown=None, **kw):
    cmd = cmd_fmt.format(root=root, n=len(files))
    shown = f"{env_line(env_shown)} bash -c {shlex.quote(cmd)}" if env_shown else cmd
    return Row(system, panel, shown, ["bash", "-c", cmd], env, files, **kw)


def system_rows(system, root, env, dataset, cp_n, env_shown=None, **kw):
    """The xargs cat row of a system, and its parallel cp row when it is one of CP_SYSTEMS."""
    rows = [shell_row(system, "cat", CAT_CMD, root, env, dataset.files, env_shown, **kw)]
    if system in CP_SYSTEMS:
        rows.append(shell_row(system, "cp", CP_CMD, root, env, dataset.cp_files(cp_n),
                              env_shown, **kw))
    return rows


def rwsplit_config(server, work, cache_dir, prefetch, nbytes):
    options = {"prefetch": prefetch}
    if nbytes > 900 << 20:          # the default 1 GiB budget would evict
        options["cache"] = f"{2 * nbytes >> 20}MiB"
    text = f"[global]\ncache_dir = {cache_dir}\n\n" + server.config_text(
        routes=[("read", ROUTE, f"s3://{BUCKET}/{PREFIX}", options)])
    path = work / f"rwsplit-{prefetch}.conf"
    path.write_text(text)
    return path


def rw_cache(shm, prefetch):
    return shm / f"cache-{prefetch}"


def rwsplit_rows(server, lib, work, shm, dataset, cp_n):
    rows = []
    for system, prefetch in ((RW_LISTING, "listing"), (RW_ALL, "all")):
        cache = rw_cache(shm, prefetch)
        conf = rwsplit_config(server, work, cache, prefetch, total(dataset.files))
        env, shown = rwsplit_env(server, lib, conf)
        rows += system_rows(system, ROUTE, env, dataset, cp_n, shown,
                            prepare=lambda cache=cache: empty_dir(cache),
                            cleanup=lambda cache=cache: shutil.rmtree(cache, True),
                            cold_means="empty cache_dir, page cache dropped")
    return rows


def fuse_rows(mount, system, dataset, cp_n, cold_means, reason, before_mount=None):
    """Rows reading through a FuseMount: mounted fresh before every cold pass, its daemon's
    peak RSS noted and unmounted after every warm pass."""
    rows = []

    def prepare():
        if before_mount:
            before_mount()
        mount.mount()

    for row in system_rows(system, mount.mnt / PREFIX.rstrip("/"), child_env(), dataset,
                           cp_n, prepare=prepare, cold_means=cold_means, daemon=mount):
        def cleanup(row=row):
            hwm = vm_hwm_kib(mount.pid)
            if hwm:
                row.daemon_hwm_kib.append(hwm)
            mount.unmount()
        row.cleanup = cleanup
        row.command = f"{mount.shown()}  # then: {row.command}; fusermount -u {mount.mnt}"
        row.unavailable = reason
        rows.append(row)
    return rows


def alternative_rows(server, work, shm, dataset, cp_n, no_s3fs):
    rows = []
    s3fs_reason = "--no-s3fs" if no_s3fs else tool_reason("s3fs")
    for system, tuned in ((S3FS, False), (S3FS_TUNED, True)):
        m = s3fs_mount(server, BUCKET, work / ("s3fs-tuned" if tuned else "s3fs"), work, tuned)
        rows += fuse_rows(m, system, dataset, cp_n, "fresh mount, page cache dropped",
                          s3fs_reason)
    cache = shm / "rclone-cache"
    m = rclone_mount(server, BUCKET, work / "rclone", work, cache)
    rows += fuse_rows(m, RCLONE, dataset, cp_n,
                      "fresh mount with an empty cache dir, page cache dropped",
                      tool_reason("rclone"), before_mount=lambda: empty_dir(cache))
    return rows


def local_rows(disk, shm_root, cp_n):
    return (system_rows(LOCAL, disk.root, child_env(), disk, cp_n,
                        cold_means="page cache dropped") +
            system_rows(TMPFS, shm_root, child_env(), disk, cp_n,
                        cold_means="nothing to drop: both passes read memory"))


def expect_counts(files):
    """A verify() for native clients: their 'objects=N bytes=B' line must cover every file."""
    want = {"objects": str(len(files)), "bytes": str(total(files))}

    def verify(p):
        got = dict(re.findall(r"(\w+)=(\S+)", p.stdout))
        bad = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
        if got.get("failed", "0") != "0":
            bad["failed"] = got["failed"]
        return f"reported {bad}, expected {want}" if bad else ""
    return verify


def native_rows(server, s3get, keys_file, dataset):
    """The two clients without files: s3get (the ceiling) and boto3 with a thread pool."""
    env = server.child_env()
    rows = []
    for system, argv, cold in (
            (CEILING, [str(s3get), server.endpoint, BUCKET, str(THREADS), str(keys_file)],
             "page cache dropped (MinIO reads from disk)"),
            (BOTO3, [str(VENV_PY), str(BOTO3_READ), server.endpoint, BUCKET, PREFIX,
                     str(THREADS)], "page cache dropped (MinIO reads from disk)")):
        rows.append(Row(system, "cat", shlex.join(argv), argv, env, dataset.files,
                        cold_means=cold, verify=expect_counts(dataset.files)))
    return rows


# -- running ------------------------------------------------------------------------------


def measure(rows, runs, alt_runs, drop_ok, server_pid):
    """runs rounds; in each, every row does prepare, drop caches, cold pass, warm pass,
    cleanup. Rounds interleave the rows so drift hits them alike. SLOW_ALTERNATIVES take
    part in the first alt_runs rounds only: at 8000 files they take 20-60 s a pass each."""
    for r in range(runs):
        for row in rows:
            if row.unavailable or (row.system in SLOW_ALTERNATIVES and r >= alt_runs):
                continue
            label = f"run {r + 1}/{runs} {row.system:34s} {row.panel}"
            try:
                if row.prepare:
                    row.prepare()
                if drop_ok:
                    drop_caches()
                for kind in ("cold", "warm"):
                    p = timed(row.argv, row.env, server_pid=server_pid, keep_stdout=True,
                              daemon_pid=row.daemon.pid if row.daemon else None)
                    wrong = row.verify(p) if p.ok and row.verify else ""
                    if wrong:
                        p.ok, p.note = False, wrong
                    p.stdout = ""              # checked; the report does not need it
                    row.passes[kind].append(p)
                    log(f"{label} {kind}: {p.seconds:7.3f} s"
                        + ("" if p.ok else f"  FAILED {p.note}"))
            except Exception as e:   # noqa: BLE001 - recorded, the other rows go on
                row.passes["cold"].append(Pass(0.0, False, f"setup failed: {e}"))
                log(f"{label}: setup failed: {e}")
            finally:
                if row.cleanup:
                    row.cleanup()


# -- checks and diagnostics (untimed) -----------------------------------------------------

SUMMARY_RE = re.compile(
    r"read summary: (\d+) files opened \((\d+) from cache\), (\d+) bytes from the store, "
    r"(\d+) bytes from cache, (\d+) GETs, (\d+) LISTs, (\d+) prefetched, (\d+) prefetch hits, "
    r"(\d+) evictions")
SUMMARY_FIELDS = ("files opened", "from cache", "bytes from store", "bytes from cache", "GETs",
                  "LISTs", "prefetched", "prefetch hits", "evictions")
CHECK_CMDS = {"cat": CAT_CMD.replace("cat > /dev/null", "sha256sum"),
              "cp": CP_CMD.replace("cp {{}} /dev/null", "sha256sum {{}}")}


def hash_tree(cmd, root, env):
    """Runs a sha256sum command; returns ({path relative to root: hex}, status, stderr
    head)."""
    p = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, timeout=PASS_TIMEOUT)
    got = {}
    for line in p.stdout.decode(errors="replace").splitlines():
        digest, _, path = line.partition("  ")
        got[os.path.relpath(path, root)] = digest
    return got, p.returncode, p.stderr.decode(errors="replace").strip().splitlines()[:3]


def compare(files, got):
    want = {rel: digest for rel, _, digest in files}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    return missing, extra, wrong


def sum_summaries(log_path):
    totals, procs = [0] * len(SUMMARY_FIELDS), 0
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return None, 0, []
    for m in SUMMARY_RE.finditer(text):
        procs += 1
        totals = [t + int(v) for t, v in zip(totals, m.groups())]
    problems = [ln for ln in text.splitlines() if " error: " in ln or " warn: " in ln][:5]
    return dict(zip(SUMMARY_FIELDS, totals)), procs, problems


def rwsplit_diagnostics(rows, work, drop_ok):
    """Per rwsplit row: an empty cache, then a cold and a warm sha256sum pass in the row's
    shape (cp rows: cold only, one sha256sum per file) with RWSPLIT_LOG=info into a log file
    (the summary line is written at exit, after coreutils has closed stderr). Every file's
    digest is checked."""
    out = []
    for i, row in enumerate(rows):
        if not row.system.startswith("rwsplit"):
            continue
        cmd = CHECK_CMDS[row.panel].format(root=ROUTE, n=len(row.files))
        row.prepare()
        if drop_ok:
            drop_caches()
        for kind in ("cold", "warm") if row.panel == "cat" else ("cold",):
            lf = work / f"diag-{i}-{kind}.log"
            got, rc, err = hash_tree(cmd, ROUTE, dict(row.env, RWSPLIT_LOG="info",
                                                      RWSPLIT_LOG_FILE=str(lf)))
            missing, extra, wrong = compare(row.files, got)
            totals, procs, problems = sum_summaries(lf)
            out.append(dict(row=row.system, panel=row.panel, kind=kind, rc=rc, err=err,
                            missing=missing, extra=extra, wrong=wrong, totals=totals,
                            procs=procs, problems=problems, cmd=cmd, nfiles=len(row.files)))
            log(f"check {row.system} {row.panel} {kind}: status {rc}, {len(got)} files hashed, "
                f"{len(missing)} missing, {len(wrong)} wrong; summaries from {procs} processes")
        row.cleanup()
    return out


def mount_check(rows, system, files, sample=50):
    """sha256 of a sample of files through a fresh mount of system: (checked, bad) or None."""
    row = next((r for r in rows if r.system == system and not r.unavailable), None)
    if row is None:
        return None
    picks = random.Random(1).sample(files, min(sample, len(files)))
    root = row.daemon.mnt / PREFIX.rstrip("/")
    bad = []
    try:
        row.prepare()
        for rel, _, digest in picks:
            with open(root / rel, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != digest:
                    bad.append(rel)
    except (OSError, RuntimeError) as e:
        bad.append(f"error: {e}")
    finally:
        row.cleanup()
    return len(picks), bad


def startup_cost(env_rw, cache, n, runs=3):
    """What a process pays for the preloaded library: n processes one after another, each
    `env VARS cat PATH` started by a plain bash loop, for a path outside any route (plain,
    rwsplit disabled, rwsplit active) and for a routed file not in the cache (emptied before
    each run: one GET per process, and the first lists d1) and in the cache. Returns
    [(label, median seconds)]."""
    routed = f"{ROUTE}/d1/f$i.bin"
    # The loop's environment: the store's credentials, no library.
    env_plain = {k: v for k, v in env_rw.items() if k not in ("LD_PRELOAD", "RWSPLIT_CONFIG")}
    variants = [
        ("plain, cat /dev/null", env_plain, "/dev/null", None),
        ("rwsplit preloaded, RWSPLIT_DISABLE=1, cat /dev/null",
         dict(env_rw, RWSPLIT_DISABLE="1"), "/dev/null", None),
        ("rwsplit active, cat /dev/null (no route touched)", env_rw, "/dev/null", None),
        # Before the cached variant, which reads what this one leaves in the cache.
        ("rwsplit active, cat of a routed file not in the cache", env_rw, routed,
         lambda: empty_dir(cache)),
        ("rwsplit active, cat of a routed file in the cache", env_rw, routed, None)]
    res = []
    for label, env, path, before in variants:
        pre = " ".join(f"{k}={shlex.quote(env[k])}" for k in
                       ("LD_PRELOAD", "RWSPLIT_CONFIG", "RWSPLIT_DISABLE") if k in env)
        loop = (f"for i in $(seq -f %05g 0 {n - 1}); do env {pre + ' ' if pre else ''}"
                f"cat {path} > /dev/null; done")
        secs = []
        for _ in range(runs):
            if before:
                before()
            p = timed(["bash", "-c", loop], env_plain)
            secs.append(p.seconds if p.ok else None)
        ok = [x for x in secs if x is not None]
        res.append((label, statistics.median(ok) if ok else None))
    return res


# -- numbers for the report -----------------------------------------------------------------


def find_row(rows, system, panel):
    return next((r for r in rows if r.system == system and r.panel == panel
                 and not r.unavailable), None)


def median_s(row, kind):
    return stats([p.seconds for p in row.passes[kind] if p.ok])[0] if row else None


def rate(row, kind):
    """MB/s (10^6 bytes) at the median, or None."""
    med = median_s(row, kind)
    return row.nbytes / 1e6 / med if med else None


def reference(rows, system, panel):
    """The row a panel's rwsplit rows are compared with: the system's own row in the panel;
    for the native clients, which have no cp row, their only row (a rate for the whole data
    set)."""
    return find_row(rows, system, "cat" if system in NATIVE else panel)


def mbs(x):
    return "–" if x is None else f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def med_of(passes, attr):
    vals = [getattr(p, attr) for p in passes if p.ok]
    return statistics.median(vals) if vals else None


# -- report -------------------------------------------------------------------------------


def results_table(rows, panel):
    L = ["| system | pass | median s | min s | max s | MB/s | files/s | ok runs |",
         "|---|---|---|---|---|---|---|---|"]
    for row in (r for r in rows if r.panel == panel):
        if row.unavailable:
            L.append(f"| {row.system} | — | unavailable: {row.unavailable} | | | | | |")
            continue
        for kind in ("cold", "warm"):
            passes = row.passes[kind]
            med, lo, hi = stats([p.seconds for p in passes if p.ok])
            n = sum(p.ok for p in passes)
            if med is None:
                L.append(f"| {row.system} | {kind} | failed | | | | | 0/{len(passes)} |")
                continue
            L.append(f"| {row.system} | {kind} | {med:.3f} | {lo:.3f} | {hi:.3f} | "
                     f"{mbs(row.nbytes / 1e6 / med)} | {len(row.files) / med:.0f} | "
                     f"{n}/{len(passes)} |")
    return L


def ratio_table(rows, panel):
    """Every rwsplit row's MB/s over each alternative's, same pass kind."""
    L = ["| rwsplit | pass | MB/s | " + " | ".join(f"vs {a}" for a in ALTERNATIVES.values())
         + " |",
         "|---|---|---|" + "---|" * len(ALTERNATIVES)]
    for row in (r for r in rows if r.panel == panel and r.system.startswith("rwsplit")):
        for kind in ("cold", "warm"):
            mine = rate(row, kind)
            cells = [ratio(mine, rate(reference(rows, a, panel), kind))
                     for a in ALTERNATIVES]
            L.append(f"| {row.system} | {kind} | {mbs(mine)} | " + " | ".join(cells) + " |")
    return L


def target_lines(rows, panel):
    """DESIGN.md's targets for every rwsplit row of a panel: met or missed, and by how much
    (the median time rwsplit would need). The ceiling has no cp form, so the cp rows are held
    only to the targets against a row running the same command."""
    targets = [("cold", CEILING, 0.8), ("cold", S3FS, 3.0), ("cold", S3FS_TUNED, 3.0),
               ("warm", LOCAL, 0.5)]
    targets = [t for t in targets if find_row(rows, t[1], panel) or panel == "cat"]
    L = []
    for row in (r for r in rows if r.panel == panel and r.system.startswith("rwsplit")):
        for kind, other, need in targets:
            ref = reference(rows, other, panel)
            mine, theirs = rate(row, kind), rate(ref, kind)
            goal = f"{kind} ≥ {need:g}× {other} ({kind})"
            if not mine or not theirs:
                L.append(f"| {PANELS[panel]} | {row.system} | {goal} | n/a | a side failed or "
                         "was unavailable |")
                continue
            r = mine / theirs
            want_s = row.nbytes / 1e6 / (need * theirs)
            if r >= need:
                verdict = f"**met**, {r / need:.2f}× the target"
            else:
                verdict = (f"**missed** by {(1 - r / need) * 100:.0f}%: rwsplit needs "
                           f"{need / r:.2f}× its speed ({median_s(row, kind):.2f} s → "
                           f"≤ {want_s:.2f} s)")
            L.append(f"| {PANELS[panel]} | {row.system} | {goal} | {r:.2f}× | {verdict} |")
    return L


def cpu_table(rows):
    L = ["| system | command | pass | wall s | client CPU s | server CPU s | other CPU s | "
         "steal s |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for kind in ("cold", "warm"):
            ok = [p for p in row.passes[kind] if p.ok]
            if row.unavailable or not ok:
                continue
            L.append(f"| {row.system} | {PANELS[row.panel]} | {kind} | " + " | ".join(
                         fmt(med_of(ok, a), d) for a, d in (
                             ("seconds", 3), ("client_cpu", 2), ("server_cpu", 2),
                             ("other_cpu", 2), ("steal", 2))) + " |")
    return L


def rss_lines(rows):
    """Peak RSS of the largest process of every timed command (rwsplit's also as the increase
    over the same command on local disk), and the FUSE daemons' peak RSS."""
    if not GNU_TIME:
        return ["Not measured: /usr/bin/time (GNU time) is not installed."]
    L = ["| system | command | pass | peak RSS MiB, median | max | increase over local disk "
         "MiB |", "|---|---|---|---|---|---|"]
    for row in rows:
        base = find_row(rows, LOCAL, row.panel)
        for kind in ("cold", "warm"):
            ok = [p for p in row.passes[kind] if p.ok and p.max_rss_kib]
            if row.unavailable or not ok:
                continue
            med = med_of(ok, "max_rss_kib") / 1024
            b = med_of(base.passes[kind], "max_rss_kib") if base else None
            more = fmt(med - b / 1024, 1) if b and row.system.startswith("rwsplit") else ""
            L.append(f"| {row.system} | {PANELS[row.panel]} | {kind} | {med:.1f} | "
                     f"{max(p.max_rss_kib for p in ok) / 1024:.1f} | {more} |")
    daemons = [r for r in rows if r.daemon_hwm_kib and r.panel == "cat"]
    if daemons:
        L.append("\nThe FUSE daemons themselves (not in the table: not part of the command's "
                 "tree), peak RSS (VmHWM) just before unmounting after the xargs cat passes, "
                 "median over rounds: " + "; ".join(
                     f"{r.system} {statistics.median(r.daemon_hwm_kib) / 1024:.1f} MiB"
                     for r in daemons) + ".")
    agent = [(r, kind, [p.agent_rss_kib for p in r.passes[kind] if p.ok and p.agent_rss_kib])
             for r in rows if r.system.startswith("rwsplit") for kind in ("cold", "warm")]
    agent = [(r, kind, v) for r, kind, v in agent if v]
    if agent:
        L.append("\nrwsplit's fetch agent (not in the table either: preloaded processes start "
                 "it and it outlives them), peak RSS (VmHWM, reset before each pass) during "
                 "the passes, median: " + "; ".join(
                     f"{r.system} ({PANELS[r.panel]}, {kind}) "
                     f"{statistics.median(v) / 1024:.1f} MiB" for r, kind, v in agent) + ".")
    return L


def check_lines(diags, mounts):
    L = []
    for d in diags:
        ok = not (d["missing"] or d["extra"] or d["wrong"]) and d["rc"] == 0
        L.append(f"- {d['row']}, {d['kind']}, {d['nfiles']} files (`{d['cmd']}`, every digest "
                 f"compared with the local copy): {'OK' if ok else '**FAILED**'}: exit status "
                 f"{d['rc']}, {len(d['missing'])} missing, {len(d['wrong'])} with wrong "
                 f"content, {len(d['extra'])} unexpected"
                 + (f"; e.g. missing {d['missing'][:3]}" if d["missing"] else "")
                 + (f"; e.g. wrong {d['wrong'][:3]}" if d["wrong"] else "")
                 + (f"; stderr: `{' | '.join(d['err'])}`" if d["err"] else ""))
    for system, res in mounts:
        if res is not None:
            checked, bad = res
            L.append(f"- {system}: sha256 of {checked} random files through a fresh mount: "
                     f"{'OK' if not bad else '**FAILED** ' + str(bad[:3])}")
    L.append(f"- {CEILING} and {BOTO3}: every pass had to report all objects and bytes of the "
             "data set (else it is a failed pass below).")
    return L


def summary_lines(diags):
    L = ["| row | check | processes with a summary | " + " | ".join(SUMMARY_FIELDS) + " |",
         "|---|---|---|" + "---|" * len(SUMMARY_FIELDS)]
    for d in diags:
        t = d["totals"] or {}
        L.append(f"| {d['row']} | {'parallel sha256sum' if d['panel'] == 'cp' else 'xargs'} "
                 f"{d['kind']} | {d['procs']} | "
                 + " | ".join(str(t.get(f, "?")) for f in SUMMARY_FIELDS) + " |")
    probs = [(d["row"], d["kind"], p) for d in diags for p in d["problems"]]
    if probs:
        L.append("\nWarnings and errors in those logs (first few):\n")
        L += [f"- {r} {k}: `{p}`" for r, k, p in probs[:10]]
    return L


def write_report(out, args, facts, dataset, rows, diags, mounts, startup, cmdline, seconds):
    files, cp_files = dataset.files, dataset.cp_files(args.cp_files)
    n_start = min(STARTUP_N, len(files) // NDIRS)
    n, nbytes = len(files), total(files)
    L = ["# rwsplit benchmark: small files\n",
         f"Generated by `{cmdline}` (run by `make bench`) in {seconds:.0f} s. Do not edit by "
         "hand: run it again.\n",
         f"Data set: {n} files of random bytes, {SIZE_MIN // 1000}–{SIZE_MAX // 1000} KB "
         f"(uniform; mean {nbytes / n / 1e3:.1f} KB, total {nbytes / 1e6:.1f} MB) in {NDIRS} "
         f"directories, seed {args.seed}, in one bucket of a MinIO on 127.0.0.1 started by the "
         "script. Two commands read it:\n",
         f"    {CAT_CMD.format(root='ROOT')}",
         f"    {CP_CMD.format(root='ROOT', n=len(cp_files))}\n",
         f"The first reads all {n} files, 4 `cat`s at a time with 50 files each; the second "
         f"the first {len(cp_files)} files of directory d0 by name "
         f"({total(cp_files) / 1e6:.1f} MB), starting a `cp` per file, 4 at a time. GNU "
         "parallel costs several ms of CPU per file whatever the file system, so that command "
         f"reads fewer files (--cp-files) and runs only for {'; '.join(CP_SYSTEMS)}. "
         f"{CEILING} and {BOTO3} read every object without files (no command to vary).\n",
         f"Each measurement ran {args.runs} times, rounds interleaving the rows, except "
         f"{'; '.join(SLOW_ALTERNATIVES)}: {min(args.alt_runs, args.runs)} "
         f"time{'s' if min(args.alt_runs, args.runs) > 1 else ''} (--alt-runs; their passes "
         "take 20–60 s each at 8000 files, which would double the run time). Tables give "
         "the median and min/max wall-clock seconds of the successful passes, and MB/s (10^6 "
         "bytes) and files/s at the median. *cold*: the state named under the tables, page "
         "cache dropped; *warm*: the same command right after.\n",
         "## Machine\n", "| | |\n|---|---|"]
    L += [f"| {k} | {v} |" for k, v in facts]
    L += ["", "## Results: xargs cat\n"] + results_table(rows, "cat")
    L += ["", "## Results: parallel cp\n"] + results_table(rows, "cp")
    L += ["", "What *cold* means per row: " + "; ".join(
        f"{r.system}: {r.cold_means}" for r in rows if r.panel == "cat") + ".\n"]

    L += ["## rwsplit against the ceiling and the alternatives\n",
          "Throughput ratios: rwsplit's MB/s over the other row's, same pass (cold with cold, "
          "warm with warm); above 1 rwsplit is faster. The ceiling and boto3 have no parallel "
          "cp row: the parallel cp table compares with their whole-data-set rates; – is a row "
          "not run (or failed). *warm* for the ceiling and boto3 means MinIO's files in the "
          "page cache, not a client cache. The s3fs, rclone and boto3 medians come from "
          f"{min(args.alt_runs, args.runs)} run(s) (--alt-runs).\n",
          "xargs cat:\n"] + ratio_table(rows, "cat")
    L += ["", "parallel cp:\n"] + ratio_table(rows, "cp")
    L += ["", "## DESIGN.md targets\n",
          "DESIGN.md states them for the `find | xargs -P4 cat` form: cold ≥ 0.8× the server "
          "ceiling and ≥ 3× s3fs-fuse, warm ≥ 0.5× local page-cache reads. For information, "
          "the parallel cp row is held to the targets against s3fs and local disk running the same "
          "command (the ceiling has no cp form). A miss gives the median rwsplit would have "
          "to reach.\n",
          "| command | rwsplit | target | measured | verdict |", "|---|---|---|---|---|"]
    L += target_lines(rows, "cat") + target_lines(rows, "cp")

    L += ["", "## CPU\n",
          "CPU seconds per pass (medians over the successful passes): *client* is the timed "
          "command's whole process tree (bash, find, xargs or parallel, every cat/cp/sh; s3get "
          "or python for the native clients) plus the FUSE daemon for s3fs and rclone and "
          "rwsplit's fetch agent (`rwsplit agent`, which serves the GETs of every preloaded "
          "process); "
          f"*server* is MinIO. The machine has {os.cpu_count()} CPUs, so client + server near "
          f"{os.cpu_count()} × wall time means CPU-bound. *other* is the rest of the machine's "
          "busy time during the pass (kernel threads, anything else running: a large value "
          "means the pass shared the CPUs); *steal* is time the hypervisor took.\n"]
    L += cpu_table(rows)
    L += ["", "## Memory\n",
          "Peak RSS of the largest process of each timed command, from GNU time "
          "(bench/common.py runs every timed command under `/usr/bin/time -f %M`; its own "
          "cost is one fork and exec per pass). For rwsplit, the increase over the same "
          "command on local disk is what the library adds to its largest process; DESIGN.md: "
          "resident memory ≤ 64 MiB beyond the cache budget (the cache is files in /dev/shm, "
          "not counted here).\n"]
    L += rss_lines(rows)

    L += ["", "## Correctness checks (untimed, after the timed runs)\n"]
    L += check_lines(diags, mounts)
    L += ["", "## rwsplit summary lines (RWSPLIT_LOG=info, summed over all processes)\n",
          "From the checking passes above (sha256sum instead of cat or cp, same shapes), "
          "started from an empty cache_dir, with `RWSPLIT_LOG=info RWSPLIT_LOG_FILE=...`: each "
          "preloaded process writes one `read summary` line at exit.\n"]
    L += summary_lines(diags)

    L += ["", "## Start-up cost of the preloaded library\n",
          f"`bash -c 'for i in $(seq -f %05g 0 {n_start - 1}); do env VARS cat PATH "
          "> /dev/null; done'`: one process after another, `env` in every variant, the "
          "loop's bash not preloaded. PATH is /dev/null (outside any route) or "
          "ROUTE/d1/f$i.bin, a routed file; *not in the cache*: cache_dir emptied before each "
          "run, so one GET per process, and the first one lists d1. Median of 3 runs. The "
          f"xargs cat command starts about {n // 50 + 3} preloaded programs, the parallel cp "
          f"command about {2 * len(cp_files) + 5} (each job is a bash that execs cp).\n",
          "| variant | seconds | ms per process | ms more than plain |", "|---|---|---|---|"]
    base = startup[0][1]
    for label, sec in startup:
        per = sec / n_start * 1000 if sec else None
        more = (sec - base) / n_start * 1000 if sec and base else None
        L.append(f"| {label} | {fmt(sec)} | {fmt(per, 2)} | {fmt(more, 2)} |")

    failures = [(r, kind, i + 1, p.note) for r in rows for kind in ("cold", "warm")
                for i, p in enumerate(r.passes[kind]) if not p.ok]
    L += ["", "## Failed passes\n"]
    if failures:
        L.append("A failed pass is left out of the statistics above.\n")
        L += [f"- {r.system}, {r.panel}, {kind}, run {i}: {note}"
              for r, kind, i, note in failures]
    else:
        L.append("None.")
    L += ["", "## Exact commands\n",
          "Each ran as `bash -c` (the native clients directly) from the repository root, "
          "under `/usr/bin/time -q -f %M -o FILE` for its peak RSS; paths are this run's "
          "temp dirs.\n"]
    L += [f"- **{r.system}** ({r.panel}): `{r.command}`" for r in rows]
    L += ["", "## Every pass (seconds; x = failed)\n",
          "| system | command | cold | warm |", "|---|---|---|---|"]
    for r in rows:
        if not r.unavailable:
            cells = [", ".join(f"{p.seconds:.3f}" + ("" if p.ok else "x") for p in r.passes[k])
                     for k in ("cold", "warm")]
            L.append(f"| {r.system} | {r.panel} | {cells[0]} | {cells[1]} |")
    L.append("")
    # Only this script's section of the file: the other benchmarks write theirs.
    replace_section(out, SECTION, "\n".join(L))


def write_json(args, rows, facts):
    """xargs cat in MB/s; parallel cp in files/s (its point is the cost per process)."""
    for panel, name, cmd in (("cat", "small_files", CAT_CMD), ("cp", "small_files_cp", CP_CMD)):
        prs = [r for r in rows if r.panel == panel and not r.unavailable]
        nfiles = len(prs[0].files) if prs else 0

        def value(r, kind):
            med = median_s(r, kind)
            return (r.nbytes / 1e6 if panel == "cat" else len(r.files)) / med if med else None
        save_json(name, {
            "title": f"Small files: {cmd.format(root='ROOT', n=nfiles)} (80–140 KB each)",
            "unit": "MB/s" if panel == "cat" else "files/s", "lower_is_better": False,
            "groups": [{"label": kind, "values": {r.system: value(r, kind) for r in prs
                                                   if value(r, kind)}}
                       for kind in ("cold", "warm")],
            "seconds": {r.system: {k: [p.seconds if p.ok else None for p in r.passes[k]]
                                   for k in ("cold", "warm")} for r in prs},
            "files": nfiles, "runs": args.runs, "machine": dict(facts)})


# -- main ---------------------------------------------------------------------------------


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, help="number of files (default 8000; --quick 800)")
    ap.add_argument("--runs", type=int, help="repetitions (default 3; --quick 1)")
    ap.add_argument("--alt-runs", type=int, default=1,
                    help="repetitions of the s3fs, rclone and boto3 rows (default 1)")
    ap.add_argument("--cp-files", type=int,
                    help="files the parallel cp command reads (default 500; --quick 100)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--build", type=Path, default=Path("build"),
                    help="build dir holding lib/librwsplit.so (default build; not rebuilt)")
    ap.add_argument("--seed", type=int, default=20240603)
    ap.add_argument("--no-s3fs", action="store_true", help="skip the s3fs rows")
    ap.add_argument("--quick", action="store_true", help="a trial: 800 files, 1 run")
    a = ap.parse_args(argv)
    a.files = a.files or (800 if a.quick else 8000)
    a.runs = a.runs or (1 if a.quick else 3)
    a.cp_files = a.cp_files or (100 if a.quick else 500)
    if not NDIRS <= a.files <= 100_000 or not 1 <= a.runs <= 20 or not 1 <= a.alt_runs \
            or not 1 <= a.cp_files <= a.files // NDIRS:
        ap.error(f"--files must be {NDIRS}..100000, --runs 1..20, --alt-runs ≥ 1, "
                 f"--cp-files 1..files/{NDIRS}")
    return a


def machine_facts(lib, drop_ok, local_dir, shm_dir):
    return host_facts() + tool_facts() + [
        ("find/xargs/cat/cp", "; ".join(run_text([t, "--version"]).splitlines()[0]
                                        for t in ("find", "xargs", "cat", "cp"))),
        ("rwsplit", lib_fact(lib)),
        ("load average at start", load_average()),
        ("drop_caches", "works (sync; echo 3 > /proc/sys/vm/drop_caches before every cold pass)"
         if drop_ok else "does NOT work here: cold passes start with the page cache as it is"),
        ("local disk dir", f"{local_dir} ({fs_type(local_dir)})"),
        ("tmpfs dir", f"{shm_dir} ({fs_type(shm_dir)})"),
        ("MinIO data", "a temp dir on the root filesystem (harness default)"),
    ]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    lib = (REPO / args.build / "lib" / "librwsplit.so").resolve()
    if not lib.exists():
        sys.exit(f"{lib} is missing: build it first (make)")
    cmdline = ".tools/venv/bin/python bench/small_files.py " + shlex.join(argv)
    signal.signal(signal.SIGTERM, _raise_exit)
    started = time.monotonic()
    if os.path.exists(ROUTE):
        log(f"warning: {ROUTE} exists on disk; rwsplit serves the route regardless")

    work = Path(tempfile.mkdtemp(prefix="rwbench-sf-", dir="/var/tmp"))   # root filesystem
    shm = Path(tempfile.mkdtemp(prefix="rwbench-sf-", dir="/dev/shm"))
    server = None
    try:
        drop_ok = drop_caches()
        log(f"drop_caches {'works' if drop_ok else 'does not work'}")
        log(f"generating {args.files} files")
        disk = make_dataset(work / "local" / "data", args.files, args.seed)
        shutil.copytree(disk.root, shm / "local" / "data")
        keys = work / "keys.txt"
        keys.write_text("".join(f"{PREFIX}{rel} {size}\n" for rel, size, _ in disk.files))
        s3get = build_tool(work, "s3get", ["-lcurl"])

        server = MinioServer().start()
        with Mc(server) as mc:
            log(f"uploading to {server.endpoint} with {MC_BIN.name} cp --recursive")
            upload(mc, server, disk)
        rows = (native_rows(server, s3get, keys, disk) +
                rwsplit_rows(server, lib, work, shm, disk, args.cp_files) +
                alternative_rows(server, work, shm, disk, args.cp_files, args.no_s3fs) +
                local_rows(disk, shm / "local" / "data", args.cp_files))
        facts = machine_facts(lib, drop_ok, work / "local", shm / "local")
        measure(rows, args.runs, args.alt_runs, drop_ok, server.pid)
        log("checking contents")
        diags = rwsplit_diagnostics(rows, work, drop_ok)
        mounts = [(s, mount_check(rows, s, disk.files)) for s in (S3FS, RCLONE)]
        listing = find_row(rows, RW_LISTING, "cat")
        startup = startup_cost(listing.env, rw_cache(shm, "listing"),
                               min(STARTUP_N, args.files // NDIRS))
        facts.append(("load average at end", load_average()))
        write_report(args.out, args, facts, disk, rows, diags, mounts, startup, cmdline,
                     time.monotonic() - started)
        write_json(args, rows, facts)
        log(f"wrote {args.out} in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        release(server, None, shm, work)


if __name__ == "__main__":
    sys.exit(main())
