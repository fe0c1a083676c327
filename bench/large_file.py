#!/usr/bin/env python3
"""Large-file read benchmark (issue 6, workload 3): one object of random bytes (default
1 GiB) read three ways, cold and warm, through rwsplit and through what users would pick
instead (s3fs-fuse, rclone mount, boto3), next to the server's own ceiling for that object
and to local disk and tmpfs.

    .tools/venv/bin/python bench/large_file.py [--size-mib 1024] [--runs 3] [--quick] \
        [--out bench/RESULTS.md] [--build build] [--fuse-cap 3] [--no-fuse] [--seed N]

The object (pseudo-random bytes, --seed) is written once to a temp dir on the root
filesystem (the *local disk* copy), copied to /dev/shm (the *tmpfs* copy) and uploaded with
`mc cp` to s3://rwbench-large/data/big.bin on a throw-away MinIO on 127.0.0.1
(tests/harness/minio.py) that this script starts and stops. The three reads:

- **dd** (sequential, one thread): `dd if=FILE of=/dev/null bs=1M`.
- **4 readers**: four `dd ... bs=1M skip=Q*i count=Q` processes started together, one per
  quarter of the file; the time until all four have finished.
- **fio random 256K**: `cd DIR && exec fio --name=rand --filename=big.bin --readonly
  --ioengine=psync --rw=randread --bs=256k --size=SIZE --io_size=IO --numjobs=1
  --runtime=3 --invalidate=0 --thread --output-format=json`: random 256 KiB preads (the
  same offsets every run), a quarter of the file (at most 256 MiB) with a 3 s cap; MB/s,
  IOPS and completion-latency percentiles from fio's JSON. `cd` + a relative name because
  fio 3.33 mkdir()s the file's directory and accepts only EEXIST, while rwsplit answers
  EROFS for a read route's existing directory (the report shows a probe). `--thread` so
  that the job runs in fio's main process, whose normal exit writes rwsplit's summary
  (forked job processes leave with _exit).

| row | what it is | cold means |
|---|---|---|
| ceiling: s3get, 4 / 16 ranged GETs in flight (dd only) | bench/s3get.c in its ranged mode: libcurl multi, SigV4 by libcurl, the object read as 8 MiB ranged GETs with 4 or 16 in flight, bodies counted and dropped. The server's sequential-read ceiling for this object; 8 MiB is rwsplit's fill chunk and boto3's default part size. | MinIO's page cache dropped |
| rwsplit (dd, 4 readers, fio) | `LD_PRELOAD=DIR/lib/librwsplit.so RWSPLIT_CONFIG=...`: read route /mnt/rwbench-large/data -> s3://rwbench-large/data/, prefetch = listing, cache_dir in /dev/shm, `cache` = 2 GiB (or twice the object) so that the object is cached, not read through a window. The object is above whole_object_max (8 MiB): open returns at once and 8 MiB ranged GETs fill it in the background (4 fill threads per process) while reads wait only for the chunks they touch (reader/rd_lazy.c). Every pass runs with RWSPLIT_LOG=info and RWSPLIT_LOG_FILE, and its `read summary` lines are reported. | empty cache_dir, page cache dropped |
| s3fs, default options (dd, 4 readers, fio) | s3fs-fuse mounted by bench/common.py s3fs_mount (`-o url=...,use_path_request_style,passwd_file=...`) | fresh mount, page cache dropped |
| s3fs, read-tuned options | the same plus `kernel_cache,max_stat_cache_size=100000,parallel_count=20` | fresh mount, page cache dropped |
| rclone mount, --vfs-cache-mode full | bench/common.py rclone_mount, its VFS cache in /dev/shm (the medium of rwsplit's cache) | fresh mount, empty VFS cache, page cache dropped |
| boto3 (dd: download_fileobj; fio: get_object Range) | a fresh Python process (this file with --boto3-child): `s3.download_fileobj` with the default TransferConfig (8 MiB parts, max_concurrency 10) into a seekable sink that counts and drops the bytes; for the random read, 256 KiB ranged `get_object` calls from one thread at random offsets (the same count and cap as fio). Timed inside the process after one HeadObject, so interpreter start-up is not counted. | MinIO's page cache dropped |
| local disk (dd, 4 readers, fio) | the copy on the root filesystem | page cache dropped |
| tmpfs (/dev/shm) (dd, 4 readers, fio) | the copy in /dev/shm | nothing to drop: both passes read memory |

A round runs, for each read in turn, every row: set up the cold state (untimed), `sync;
echo 3 > /proc/sys/vm/drop_caches`, the cold pass, then the warm pass (the same command
again right after), then tear-down. Rounds interleave the rows; `--runs` rounds (default
3). To keep the default run near 4 minutes: the s3fs and rclone dd and readers passes stop
after --fuse-cap seconds (default 3; `timeout -s INT`, dd reports what it read, MB/s is that
over the pass's wall time; 0 reads the whole object), every fio run after 3 s, and warm
passes are run only where a cache can serve them: rwsplit, local disk and tmpfs for every
read, s3fs read-tuned and rclone for dd, none for s3fs default (no data cache) and boto3.

Measured per pass: wall time; MB/s (10^6 bytes/s: for dd and the readers the bytes read over
the command's wall time, process start-up included; for s3get its process wall time; for
boto3 the call timed inside the process; for fio its own bandwidth); peak RSS of the
command's largest process by GNU time (/usr/bin/time -f %M: common.timed's wait4 figure
keeps the high-water mark of this Python process, which the child had before exec) and the
FUSE daemon's VmHWM; CPU of the command's process tree (plus the FUSE daemon), of MinIO, of
the rest of the machine, and steal. The report gives median, min and max, every rwsplit
number as a ratio to the ceilings and to every alternative, and DESIGN.md's target: a 1 GiB
sequential read at >= 0.8x the server ceiling (rwsplit dd cold / the fastest ceiling row
cold), met or missed and by how much.

Correctness (untimed, after the timed runs, through rwsplit): sha256sum of the object with
an empty cache and again from the cache, against the source's; four concurrent `dd |
sha256sum` of the quarters with an empty cache against the source's quarters; 200 random
256 KiB preads from a fresh process with an empty cache, compared byte for byte with the
local copy. Every timed pass is checked too (dd's byte or record counts, s3get's and the
boto3 child's byte counts, fio's error field): a pass that fails, reads short or runs over
its time limit is listed with its stderr and left out of the statistics.

Writes the `large-file` section of --out (between <!-- large-file:begin --> and
<!-- large-file:end -->) and bench/results/large_file.json (RWBENCH_RESULTS_JSON moves it;
groups "dd cold", "dd warm", "4 readers cold", "4 readers warm", "fio random 256K cold",
"fio random 256K warm", in MB/s). Needs root (drop_caches, FUSE), gcc and libcurl (s3get),
fio, GNU time, about 3 GiB free on the root filesystem (the local copy and MinIO's) and
3 GiB in /dev/shm (the tmpfs copy, rwsplit's and rclone's caches).
"""

import argparse
import hashlib
import io
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
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.common import empty_dir, log, vm_hwm_kib  # noqa: E402
from bench.results_md import replace_section  # noqa: E402
from tests.harness.minio import MC_BIN, Mc, MinioServer  # noqa: E402

MiB = 1 << 20
SECTION = "large-file"
JSON_NAME = "large_file"
ROUTE = "/mnt/rwbench-large/data"   # the rwsplit read route (nothing exists there on disk)
BUCKET = "rwbench-large"
PREFIX = "data/"
NAME = "big.bin"
PART = 8 * MiB                      # rwsplit's fill chunk (reader/rd_lazy.c) and boto3's part
CEILING_INFLIGHT = (4, 16)
READERS = 4
BS = 256 * 1024                     # the random read size
FIO_IO_MIB = 256                    # random I/O per fio run (capped at a quarter of the file)
FIO_CAP_S = 3                       # fio's --runtime: slow rows stop early and say so
FUSE_CAP_S = 3                      # the s3fs and rclone rows' dd and readers passes stop here
DD_TIMEOUT = 120                    # seconds; a dd or readers pass that takes longer fails
DESIGN_TARGET = "a 1 GiB sequential read at ≥ 0.8× the server ceiling"
TARGET = 0.8
# Every timed command runs under GNU time for its peak RSS: wait4's ru_maxrss (what
# common.timed records) keeps the high-water mark of the memory the child had before exec,
# i.e. this Python process's RSS (~50 MiB), so a 2 MiB dd would show 50 MiB.
GNU_TIME = "/usr/bin/time"
SUMMARY_RE = re.compile(
    r"read summary: (\d+) files opened \((\d+) from cache\), (\d+) bytes from the store, "
    r"(\d+) bytes from cache, (\d+) GETs, (\d+) LISTs, (\d+) prefetched, (\d+) prefetch hits, "
    r"(\d+) evictions")
SUMMARY_FIELDS = ("opens", "from_cache", "bytes_store", "bytes_cache", "gets", "lists",
                  "prefetched", "prefetch_hits", "evictions")
PROBLEM_RE = re.compile(r"^rwsplit\[\d+\] (error|warn)[^\n]*", re.MULTILINE)
RECORDS_RE = re.compile(r"(\d+)\+(\d+) records in")
# Not anchored: dd writes the newline after its bytes line separately, so with four dd
# finishing together another one's line can start right after "... MB/s".
BYTES_RE = re.compile(r"(\d+) bytes (?:\([^)]*\) )?copied")
CAPPED = "rwbench-capped"

OPS = ("dd", "readers", "fio")
OP_LABEL = {"dd": "dd", "readers": f"{READERS} readers", "fio": "fio random 256K"}
KINDS = ("cold", "warm")


# -- the object ---------------------------------------------------------------------------


@dataclass
class Source:
    """The object's bytes on local disk, with the digests the checks compare against."""
    path: Path
    size: int
    sha256: str
    quarters: list                  # sha256 of each reader's part


def make_source(path, size, seed):
    """size pseudo-random bytes in path (random.Random(seed), which is several times faster
    than os.urandom and repeatable; nothing here compresses), hashed whole and by quarter
    (each reader's part)."""
    rng = random.Random(seed)
    whole, quarters, q = hashlib.sha256(), [], size // READERS
    with open(path, "wb") as f:
        for start in range(0, size, q):
            part = hashlib.sha256()
            for off in range(start, start + q, PART):
                chunk = rng.randbytes(min(PART, start + q - off))
                f.write(chunk)
                whole.update(chunk)
                part.update(chunk)
            quarters.append(part.hexdigest())
    return Source(path, size, whole.hexdigest(), quarters)


def upload(mc, server, src):
    """mc cp into s3://BUCKET/PREFIX/NAME, then checks the size the store reports."""
    mc.mb(BUCKET)
    mc.run("cp", "--quiet", src.path, mc.target(f"{BUCKET}/{PREFIX}{NAME}"), timeout=600)
    got = server.boto3_client().head_object(Bucket=BUCKET, Key=PREFIX + NAME)["ContentLength"]
    if got != src.size:
        raise RuntimeError(f"upload: the store has {got} bytes, expected {src.size}")


# -- the commands -------------------------------------------------------------------------


def dd_argv(path):
    return ["dd", f"if={path}", "of=/dev/null", "bs=1M"]


def capped_dd_cmd(path, cap):
    """dd stopped by SIGINT after cap seconds (it then prints what it read, which the check
    turns into MB/s); CAPPED on stdout says the cap was hit."""
    return (f"timeout -s INT {cap} dd if={shlex.quote(str(path))} of=/dev/null bs=1M 2>&1; "
            f"s=$?; if [ $s -eq 124 ]; then echo {CAPPED}; s=0; fi; exit $s")


def readers_cmd(path, size, cap=0):
    """READERS dd processes started together, one per quarter (in 1 MiB blocks); every dd's
    status counts, and their transfer lines go to stdout for the check. With cap, each dd
    stops after cap seconds."""
    q = size // READERS // MiB
    pre = f"timeout -s INT {cap} " if cap else ""
    starts = "; ".join(f"{pre}dd if={shlex.quote(str(path))} of=/dev/null bs=1M "
                       f"skip={i * q} count={q} 2>&1 & p{i}=$!" for i in range(READERS))
    pids = " ".join(f"$p{i}" for i in range(READERS))
    if not cap:
        return f"{starts}; rc=0; for p in {pids}; do wait $p || rc=$?; done; exit $rc"
    return (f"{starts}; rc=0; for p in {pids}; do wait $p; s=$?; if [ $s -eq 124 ]; then "
            f"c={CAPPED}; elif [ $s -ne 0 ]; then rc=$s; fi; done; echo $c; exit $rc")


def fio_cmd(path, size, io_bytes, cap_s):
    """fio started in the file's directory with a relative --filename: given a path with a
    directory, fio 3.33 first mkdir()s that directory and accepts only EEXIST, and rwsplit
    answers EROFS for an existing directory of a read route (see the report). --thread: the
    job runs in fio's own process, whose exit writes rwsplit's summary line (forked job
    processes leave with _exit)."""
    path = Path(path)
    return (f"cd {shlex.quote(str(path.parent))} && exec fio --name=rand "
            f"--filename={shlex.quote(path.name)} --readonly --ioengine=psync --rw=randread "
            f"--bs={BS // 1024}k --size={size} --io_size={io_bytes} --numjobs=1 "
            f"--runtime={cap_s} --invalidate=0 --thread --output-format=json")


def boto3_argv(how, size, io_bytes=0, cap_s=0):
    argv = [str(common.VENV_PY), str(Path(__file__).resolve()), "--boto3-child", how,
            "--size", str(size)]
    if how == "ranged":
        argv += ["--ios", str(io_bytes // BS), "--cap", str(cap_s)]
    return argv


def shown(argv, env_shown=None):
    """A command line as a user would type it, repository paths made relative."""
    argv = [os.path.relpath(a, REPO) if str(a).startswith(str(REPO)) else str(a) for a in argv]
    line = shlex.join(argv)
    return f"{common.env_line(env_shown)} {line}" if env_shown else line


# -- what is measured ---------------------------------------------------------------------


@dataclass
class Run:
    """One timed pass and what it read: mbps (10^6 bytes/s), extra (fio/boto3 numbers, the
    rwsplit summary, the FUSE daemon's peak RSS)."""
    p: common.Pass
    mbps: float = None
    extra: dict = field(default_factory=dict)


@dataclass
class Row:
    """One way of reading the object. cmds: op -> (argv, shown line, check(run) -> problem or
    ''). prepare() sets up the cold state before each op's cold pass (untimed); finish()
    tears it down after the warm pass."""
    name: str
    kind: str                       # ceiling, rwsplit, fuse, boto3, local
    env: dict
    cmds: dict
    cold_means: str
    prepare: object = None
    finish: object = None
    daemon: object = None           # a FuseMount whose daemon's CPU counts as the client's
    log_file: Path = None           # rwsplit: RWSPLIT_LOG_FILE of every pass
    mount_line: str = ""            # FUSE rows: the mount command
    drop: bool = True               # drop the page cache before the cold pass (not for tmpfs)
    warm_ops: tuple = OPS           # the reads that get a warm pass after the cold one
    unavailable: str = ""
    runs: dict = field(default_factory=dict)     # (op, kind) -> [Run]

    def ok_runs(self, op, kind):
        return [r for r in self.runs.get((op, kind), []) if r.p.ok]

    def kinds(self, op):
        return KINDS if op in self.warm_ops else KINDS[:1]


def check_dd(size, nproc):
    """Every dd read its whole part: the bytes of its `... bytes copied` line on stdout, or
    for a plain dd the 'N+0 records in' of 1 MiB that starts its stderr. A capped pass
    (CAPPED on stdout) read what its dd's full input records say, perhaps nothing: its MB/s
    is that over the pass's wall time."""
    def check(run):
        out = run.p.stdout
        if CAPPED in out:
            got = sum(int(full) for full, _ in RECORDS_RE.findall(out)) * MiB
            if len(RECORDS_RE.findall(out)) != nproc or got > size:
                return f"capped dd: {nproc} `records in` lines expected"
            run.extra["capped_bytes"] = got
            run.mbps = got / run.p.seconds / 1e6
            return ""
        got = [int(b) for b in BYTES_RE.findall(out)]
        m = RECORDS_RE.match(run.p.note)
        if not got and m and m.group(2) == "0":
            got = [int(m.group(1)) * MiB]
        if len(got) != nproc or sum(got) != size:
            return f"dd read {got} bytes ({run.p.note!r}), expected {size} in all from {nproc} dd"
        return ""
    return check


def check_fio(run):
    """fio's JSON: no error and some I/O done; its numbers go into run.extra."""
    out = run.p.stdout
    try:
        job = json.loads(out[out.index("{"):])["jobs"][0]
    except (ValueError, KeyError, IndexError) as e:
        return f"no fio JSON ({e!r}): {out[:200]!r}"
    r = job["read"]
    pct = r["clat_ns"].get("percentile", {})
    run.extra.update(ios=r["total_ios"], io_bytes=r["io_bytes"], iops=r["iops"],
                     runtime_s=r["runtime"] / 1000,
                     p50_ms=pct.get("50.000000", 0) / 1e6, p99_ms=pct.get("99.000000", 0) / 1e6)
    run.mbps = r["bw_bytes"] / 1e6
    if job.get("error") or not r["io_bytes"]:
        return f"fio error {job.get('error')}, {r['io_bytes']} bytes read"
    return ""


def check_s3get(size):
    def check(run):
        m = re.search(r"bytes=(\d+) seconds=([\d.]+) failed=(\d+)", run.p.stdout)
        if not m or int(m.group(1)) != size or m.group(3) != "0":
            return f"s3get: {run.p.stdout.strip()!r}, expected bytes={size} failed=0"
        run.extra["own_s"] = float(m.group(2))
        return ""
    return check


def check_boto3(size, ranged):
    """The child's JSON: its own seconds and bytes (download: every byte of the object)."""
    def check(run):
        try:
            j = json.loads(run.p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError) as e:
            return f"no JSON from the boto3 child ({e!r})"
        run.extra.update(j)
        if not j["seconds"] or (not ranged and j["bytes"] != size) or (ranged and not j["ios"]):
            return f"boto3 child: {j}"
        run.mbps = j["bytes"] / j["seconds"] / 1e6
        return ""
    return check


def file_cmds(path, size, io_bytes, cap_s, env_shown=None, dd_cap=0):
    """dd, readers and fio on a file path (local, FUSE or the rwsplit route); dd_cap: a
    time limit for the dd and readers passes."""
    dd = ["bash", "-c", capped_dd_cmd(path, dd_cap)] if dd_cap else dd_argv(path)
    rd = ["bash", "-c", readers_cmd(path, size, dd_cap)]
    return {
        "dd": (dd, shown(dd, env_shown), check_dd(size, 1)),
        "readers": (rd, shown(rd, env_shown), check_dd(size, READERS)),
        "fio": (["bash", "-c", fio_cmd(path, size, io_bytes, cap_s)],
                shown(["bash", "-c", fio_cmd(path, size, io_bytes, cap_s)], env_shown),
                check_fio),
    }


def ceiling_rows(server, exe, keys, size):
    rows = []
    for n in CEILING_INFLIGHT:
        argv = [str(exe), server.endpoint, BUCKET, str(n), str(keys), str(PART)]
        rows.append(Row(f"ceiling: s3get, {n} ranged GETs in flight", "ceiling",
                        server.child_env(), {"dd": (argv, shown(argv), check_s3get(size))},
                        "MinIO's page cache dropped"))
    return rows


def rwsplit_config(server, work, cache_dir, size):
    budget = max(2048, 2 * size // MiB)      # above the object: cached, not windowed
    text = f"[global]\ncache_dir = {cache_dir}\n\n" + server.config_text(routes=[
        ("read", ROUTE, f"s3://{BUCKET}/{PREFIX}", {"prefetch": "listing",
                                                    "cache": f"{budget}MiB"})])
    path = work / "rwsplit-large.conf"
    path.write_text(text)
    return path


def rwsplit_row(server, lib, conf, cache_dir, log_file, size, io_bytes, cap_s):
    env, env_shown = common.rwsplit_env(server, lib, conf, {
        "RWSPLIT_LOG": "info", "RWSPLIT_LOG_FILE": log_file})
    return Row("rwsplit", "rwsplit", env,
               file_cmds(f"{ROUTE}/{NAME}", size, io_bytes, cap_s, env_shown),
               "empty cache_dir, page cache dropped",
               prepare=lambda: empty_dir(cache_dir), log_file=log_file)


def fuse_row(name, make_mount, mnt, size, io_bytes, cap_s, dd_cap, reason, warm_ops,
             extra_prepare=None):
    """A FUSE row: a fresh mount for every cold pass, unmounted after the warm pass (if
    any); dd and the readers stop after dd_cap seconds."""
    holder = {}

    def prepare():
        if extra_prepare:
            extra_prepare()
        holder["m"] = make_mount()
        holder["m"].mount()

    def finish():
        if "m" in holder:
            holder.pop("m").unmount()

    row = Row(name, "fuse", common.child_env(),
              file_cmds(mnt / PREFIX / NAME, size, io_bytes, cap_s, dd_cap=dd_cap),
              "fresh mount, page cache dropped", prepare=prepare, finish=finish,
              unavailable=reason, warm_ops=warm_ops)
    row.daemon = lambda: holder.get("m")
    if not reason:
        row.mount_line = make_mount().shown()
    return row


def fuse_rows(server, work, shm, size, io_bytes, cap_s, dd_cap, no_fuse):
    rows = []
    for tuned in (False, True):
        name = f"s3fs, {'read-tuned' if tuned else 'default'} options"
        mnt = work / f"mnt-s3fs-{'tuned' if tuned else 'default'}"
        reason = "--no-fuse" if no_fuse else common.tool_reason("s3fs")
        # Without kernel_cache s3fs keeps no data between opens: a warm pass would only
        # repeat the cold one without the page-cache drop.
        rows.append(fuse_row(name, lambda mnt=mnt, tuned=tuned: common.s3fs_mount(
            server, BUCKET, mnt, work, tuned), mnt, size, io_bytes, cap_s, dd_cap, reason,
            ("dd",) if tuned else ()))
    mnt, cache = work / "mnt-rclone", shm / "rclone-cache"
    reason = "--no-fuse" if no_fuse else common.tool_reason("rclone")
    row = fuse_row("rclone mount, --vfs-cache-mode full",
                   lambda: common.rclone_mount(server, BUCKET, mnt, work, cache), mnt, size,
                   io_bytes, cap_s, dd_cap, reason, ("dd",),
                   extra_prepare=lambda: empty_dir(cache))
    row.cold_means = "fresh mount, empty VFS cache, page cache dropped"
    rows.append(row)
    return rows


def boto3_row(server, size, io_bytes, cap_s):
    down, ranged = boto3_argv("download", size), boto3_argv("ranged", size, io_bytes, cap_s)
    return Row("boto3", "boto3",
               server.child_env(),
               {"dd": (down, shown(down), check_boto3(size, False)),
                "fio": (ranged, shown(ranged), check_boto3(size, True))},
               "MinIO's page cache dropped", warm_ops=())


def local_rows(src, tmpfs_path, size, io_bytes, cap_s):
    env = common.child_env({"LD_PRELOAD": None, "RWSPLIT_CONFIG": None})
    return [Row("local disk", "local", env, file_cmds(src.path, size, io_bytes, cap_s),
                "page cache dropped"),
            Row("tmpfs (/dev/shm)", "local", env, file_cmds(tmpfs_path, size, io_bytes, cap_s),
                "nothing to drop: both passes read memory", drop=False)]


# -- running ------------------------------------------------------------------------------



def read_summary(log_file):
    """Sums the `read summary` lines of one pass's log; (totals, lines, problems)."""
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    sums = [tuple(int(x) for x in m) for m in SUMMARY_RE.findall(text)]
    totals = dict(zip(SUMMARY_FIELDS, map(sum, zip(*sums)))) if sums else {}
    return totals, len(sums), [m.group(0) for m in PROBLEM_RE.finditer(text)]


def peak_rss_kib(path):
    """GNU time's %M (the last line of its -o file: a failed command adds a line before)."""
    try:
        return int(path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return 0


def one_pass(row, op, server_pid, size, timeout, rss_file):
    argv, _line, check = row.cmds[op]
    if row.log_file:
        row.log_file.unlink(missing_ok=True)
    rss_file.unlink(missing_ok=True)
    if os.path.exists(GNU_TIME):
        argv = [GNU_TIME, "-o", str(rss_file), "-f", "%M", *argv]
    mount = row.daemon() if row.daemon else None
    p = common.timed(argv, row.env, timeout=timeout, server_pid=server_pid,
                     daemon_pid=mount.pid if mount else None, keep_stdout=True)
    run = Run(p)
    run.extra["wait4_max_rss_kib"] = p.max_rss_kib
    p.max_rss_kib = peak_rss_kib(rss_file) or p.max_rss_kib
    if p.ok:
        problem = check(run)
        if problem:
            p.ok, p.note = False, f"{problem}; stdout ends {p.stdout[-300:]!r}"
        elif run.mbps is None:
            run.mbps = size / p.seconds / 1e6
    if mount:
        run.extra["daemon_hwm_kib"] = vm_hwm_kib(mount.pid)
    if row.log_file:
        totals, procs, problems = read_summary(row.log_file)
        run.extra.update(summary=totals, summary_procs=procs)
        if problems:
            run.extra["problems"] = problems[:3]
    p.stdout = ""                   # checked; not kept in the JSON
    return run


def describe(run):
    if not run.p.ok:
        return f"FAILED: {run.p.note}"
    s = f"{run.p.seconds:7.3f} s {run.mbps:8.1f} MB/s rss {run.p.max_rss_kib // 1024} MiB"
    if "capped_bytes" in run.extra:
        s += f"  capped after {run.extra['capped_bytes'] / 1e6:.0f} MB"
    if "gets" in run.extra.get("summary", {}):
        t = run.extra["summary"]
        s += f"  [{t['gets']} GETs, {t['bytes_store'] / 1e6:.0f} MB from store]"
    return s


def measure(rows, runs, server_pid, size, drop_ok, loads, rss_file):
    """runs rounds; in each, for every read, every row: prepare, drop caches, cold, warm,
    finish. An error (a mount that fails, ...) fails that row's passes of the round and the
    others go on."""
    for r in range(1, runs + 1):
        loads.append(common.load_average())
        log(f"round {r}/{runs}, load average {loads[-1]}")
        for op in OPS:
            timeout = FIO_CAP_S * 4 + 30 if op == "fio" else DD_TIMEOUT
            for row in rows:
                if row.unavailable or op not in row.cmds:
                    continue
                try:
                    if row.prepare:
                        row.prepare()
                    if drop_ok and row.drop:
                        common.drop_caches()
                    for kind in row.kinds(op):
                        run = one_pass(row, op, server_pid, size, timeout, rss_file)
                        row.runs.setdefault((op, kind), []).append(run)
                        log(f"{r}/{runs} {OP_LABEL[op]:16s} {kind} {row.name:45.45s} "
                            + describe(run))
                except Exception as e:   # noqa: BLE001 - recorded; the other rows go on
                    log(f"{row.name} {op}: {e!r}")
                    for kind in row.kinds(op):
                        runs_ = row.runs.setdefault((op, kind), [])
                        if len(runs_) < r:
                            runs_.append(Run(common.Pass(0.0, False, f"error: {e!r}")))
                finally:
                    if row.finish:
                        row.finish()


# -- correctness (untimed) ----------------------------------------------------------------


def run_sh(cmd, env, cwd=None, timeout=300):
    p = subprocess.run(["bash", "-c", cmd], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.strip()


def rwsplit_checks(row, src, cache_dir, work):
    """sha256 through rwsplit cold and warm, the quarters by four concurrent readers, and
    random preads compared with the local copy. Returns [(what, ok, detail)]."""
    path = f"{ROUTE}/{NAME}"
    out = []

    def summary():
        totals, procs, problems = read_summary(row.log_file)
        return (f"; read summary over {procs} processes: {totals.get('gets', '?')} GETs, "
                f"{totals.get('bytes_store', '?')} bytes from the store, "
                f"{totals.get('bytes_cache', '?')} from cache"
                + (f"; logged: {problems[:2]}" if problems else ""))

    def fresh(cold):
        """cold: an empty cache (MinIO's page cache does not matter for content)."""
        row.log_file.unlink(missing_ok=True)
        if cold:
            empty_dir(cache_dir)

    for kind in KINDS:
        fresh(kind == "cold")
        rc, so, err = run_sh(f"sha256sum {shlex.quote(path)}", row.env)
        got = so.split()[0] if so else ""
        out.append((f"`sha256sum {path}` {kind}", rc == 0 and got == src.sha256,
                    f"exit {rc}, {got[:16]}… vs source {src.sha256[:16]}…"
                    + (f", stderr `{err[:200]}`" if err else "") + summary()))
    fresh(True)
    q = src.size // READERS // MiB
    cmd = "; ".join(f"dd if={shlex.quote(path)} bs=1M skip={i * q} count={q} status=none | "
                    f"sha256sum > q{i} & p{i}=$!" for i in range(READERS))
    cmd = (f"{cmd}; rc=0; for p in "
           + " ".join(f"$p{i}" for i in range(READERS)) + "; do wait $p || rc=$?; done; "
           + "cat " + " ".join(f"q{i}" for i in range(READERS)) + "; exit $rc")
    rc, so, err = run_sh(cmd, row.env, cwd=work)
    got = [ln.split()[0] for ln in so.splitlines() if ln.strip()]
    out.append((f"{READERS} concurrent `dd | sha256sum` of the quarters, cold",
                rc == 0 and got == src.quarters,
                f"exit {rc}, {sum(a == b for a, b in zip(got, src.quarters))}/{READERS} "
                f"quarters match" + (f", stderr `{err[:200]}`" if err else "") + summary()))
    fresh(True)
    argv = [str(common.VENV_PY), str(Path(__file__).resolve()), "--check-child", path,
            str(src.path), "--n", "200"]
    p = subprocess.run(argv, env=row.env, capture_output=True, text=True, timeout=300)
    out.append(("200 random 256 KiB preads in a fresh process, cold, compared with the local "
                "copy", p.returncode == 0,
                (p.stdout.strip() or p.stderr.strip())[:300] + summary()))
    return out


def mkdir_probe(env):
    """What mkdir() of the route's own directory answers under rwsplit (errno name)."""
    code = (f"import errno, os\ntry:\n    os.mkdir({ROUTE!r})\n    print('success')\n"
            "except OSError as e:\n    print(errno.errorcode.get(e.errno, e.errno))")
    p = subprocess.run([str(common.VENV_PY), "-c", code], env=env, capture_output=True,
                       text=True, timeout=60)
    return p.stdout.strip() or f"no answer ({p.stderr.strip()[:200]})"


# -- the boto3 and check children (this file run again with --boto3-child / --check-child)


class CountingSink(io.RawIOBase):
    """A seekable, /dev/null-like file object that counts the bytes written to it, so that
    s3transfer writes its parts as it would to a file."""

    def __init__(self):
        self.pos = self.bytes = 0

    def writable(self):
        return True

    def seekable(self):
        return True

    def seek(self, off, whence=0):
        self.pos = off if whence == 0 else self.pos + off
        return self.pos

    def tell(self):
        return self.pos

    def write(self, b):
        n = len(b)
        self.pos += n
        self.bytes += n
        return n


def boto3_child(argv):
    ap = argparse.ArgumentParser(prog="large_file.py --boto3-child")
    ap.add_argument("how", choices=("download", "ranged"))
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--ios", type=int, default=0)
    ap.add_argument("--cap", type=float, default=0)
    a = ap.parse_args(argv)
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=os.environ["RWSPLIT_TEST_ENDPOINT"],
                      config=Config(s3={"addressing_style": "path"}, proxies={}))
    key = PREFIX + NAME
    s3.head_object(Bucket=BUCKET, Key=key)      # client and connection ready before timing
    if a.how == "download":
        sink = CountingSink()
        t0 = time.perf_counter()
        s3.download_fileobj(BUCKET, key, sink, Config=TransferConfig())
        print(json.dumps({"seconds": time.perf_counter() - t0, "bytes": sink.bytes}))
        return 0
    rng = random.Random(1)
    blocks = a.size // BS
    lat, got = [], 0
    t0 = time.perf_counter()
    for _ in range(a.ios):
        if time.perf_counter() - t0 > a.cap:
            break
        off = rng.randrange(blocks) * BS
        t = time.perf_counter()
        body = s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={off}-{off + BS - 1}")
        n = len(body["Body"].read())
        lat.append(time.perf_counter() - t)
        if n != BS:
            sys.exit(f"short read at {off}: {n} bytes")
        got += n
    seconds = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
    print(json.dumps({"seconds": seconds, "bytes": got, "ios": len(lat), "iops": len(lat) / seconds,
                      "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}))
    return 0


def check_child(argv):
    """Random BS preads of ROUTED compared with LOCAL (run under the library)."""
    ap = argparse.ArgumentParser(prog="large_file.py --check-child")
    ap.add_argument("routed")
    ap.add_argument("local")
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args(argv)
    rng = random.Random(2)
    bad = []
    fr, fl = os.open(a.routed, os.O_RDONLY), os.open(a.local, os.O_RDONLY)
    size = os.fstat(fl).st_size
    if os.fstat(fr).st_size != size:
        sys.exit(f"size {os.fstat(fr).st_size} through the route, {size} locally")
    for _ in range(a.n):
        off = rng.randrange(size - BS + 1)
        if os.pread(fr, BS, off) != os.pread(fl, BS, off):
            bad.append(off)
    print(f"{a.n - len(bad)}/{a.n} preads equal" + (f"; differ at {bad[:5]}" if bad else ""))
    return 1 if bad else 0


# -- report -------------------------------------------------------------------------------


def mbps_stats(row, op, kind):
    return common.stats([r.mbps for r in row.ok_runs(op, kind)])


def med_extra(runs, key):
    v = [r.extra[key] for r in runs if key in r.extra]
    return statistics.median(v) if v else None


def ratio_target(rw, ceil):
    if not rw or not ceil:
        return "–"
    x = rw / ceil
    if x >= TARGET:
        return f"{x:.2f}× — **met** ({(x / TARGET - 1) * 100:.0f}% above the target)"
    return (f"{x:.2f}× — **missed** by {TARGET - x:.2f} (rwsplit would need "
            f"{(TARGET / x - 1) * 100:.0f}% more throughput)")


def groups(rows):
    return [(op, kind) for op in OPS for kind in KINDS
            if any(r.ok_runs(op, kind) for r in rows)]


def write_report(out, args, cmdline, facts, loads, rows, checks, probe, conf_text, src,
                 seconds, io_bytes, cap_s):
    size = src.size
    L = [f"# rwsplit benchmark: one large file ({size // MiB} MiB)\n",
         f"Generated by `{cmdline}` (run by `make bench`) in {seconds:.0f} s. Do not edit by "
         "hand: run it again. bench/README.md describes every row.\n"]
    L += intro_lines(args, size, io_bytes, cap_s)
    L.append("## Machine\n")
    L.append("| | |\n|---|---|")
    L += [f"| {k} | {v} |" for k, v in facts]
    L.append(f"| load average before each round | {'; '.join(loads)} |")
    L.append("")
    L += rows_lines(rows, args)
    L += seq_lines(rows)
    L += random_lines(rows, io_bytes, cap_s)
    rw = next((r for r in rows if r.kind == "rwsplit"), None)
    L += target_lines(rows, rw)
    L += ratio_lines(rows, rw)
    L += cpu_lines(rows)
    if rw:
        L += summary_lines(rw, size, conf_text)
    L.append("## Correctness checks (untimed, after the timed runs)\n")
    L.append(f"Source: sha256 `{src.sha256}`.\n")
    L += [f"- {what}: {'OK' if ok else '**FAILED**'} ({detail})" for what, ok, detail in checks]
    L.append("- Every timed pass: dd's bytes (`N+0 records in`, or the `bytes copied` lines) "
             "for the whole object or its quarter unless capped, s3get's and the boto3 "
             "child's byte counts, fio's error field.")
    L.append(f"- Compatibility probe: `mkdir(\"{ROUTE}\")` (the route's own, existing "
             f"directory) under rwsplit fails with **{probe}**; Linux answers EEXIST for an "
             "existing path, even on a read-only filesystem. fio 3.33 mkdir()s the directory "
             "of its --filename and accepts only EEXIST, so `fio --filename=" + ROUTE + "/"
             + NAME + "` stops with `failed to create dir (...): Read-only file system`; "
             "every fio row here therefore runs `cd DIR && exec fio --filename=" + NAME + "`.")
    L.append("")
    failures = [(row.name, OP_LABEL[op], kind, i + 1, r.p.note) for row in rows
                for (op, kind), runs in row.runs.items() for i, r in enumerate(runs)
                if not r.p.ok]
    L.append("## Failed passes\n")
    if failures:
        L.append("A failed pass is left out of the statistics above.\n")
        L += [f"- {n}, {op} {kind}, run {i}: {note}" for n, op, kind, i, note in failures]
    else:
        L.append("None.")
    L.append("")
    L += command_lines(rows)
    L.append("## Every pass (MB/s; x = failed, c = capped)\n")
    L.append("| read | row | cold | warm |\n|---|---|---|---|")
    for op in OPS:
        for row in rows:
            if (op, "cold") not in row.runs:
                continue
            cells = [", ".join("x" if not r.p.ok else f"{r.mbps:.0f}"
                               + ("c" if "capped_bytes" in r.extra else "")
                               for r in row.runs.get((op, k), [])) for k in KINDS]
            L.append(f"| {OP_LABEL[op]} | {row.name} | {cells[0]} | {cells[1]} |")
    L.append("")
    replace_section(out, SECTION, "\n".join(L))


def intro_lines(args, size, io_bytes, cap_s):
    q = size // MiB // READERS
    return [
        f"One object of {size // MiB} MiB ({size / 1e6:.0f} MB) of random bytes, "
        f"`s3://{BUCKET}/{PREFIX}{NAME}` on a MinIO on 127.0.0.1 started by the script "
        "(uploaded once with `mc cp`), plus a local-disk and a tmpfs copy. Reads:\n",
        "- **dd**: `dd if=FILE of=/dev/null bs=1M`; the ceiling and boto3 rows read the "
        "whole object their own way (see the commands).\n"
        f"- **{READERS} readers**: {READERS} `dd if=FILE of=/dev/null bs=1M skip=… count={q}` "
        "started together, one per quarter; the time until all have finished.\n"
        f"- **fio random 256K**: fio psync randread, bs 256 KiB, one job, "
        f"{io_bytes // MiB} MiB of random reads (the same offsets every run) with a "
        f"{cap_s} s cap; MB/s, IOPS and latency from fio's JSON. The boto3 row does the "
        "same number of 256 KiB ranged `get_object` calls from one thread.\n",
        f"Each measurement ran {args.runs} times; rounds interleave the rows. *cold*: the "
        "state in the *cold means* column, and the page cache dropped (`sync; echo 3 > "
        "/proc/sys/vm/drop_caches`) just before; *warm*: the same command again right after. "
        "MB/s is 10^6 bytes per second: for dd and the readers the bytes read over the "
        "command's wall time (process start-up included), for s3get its process wall time, "
        "for boto3 the transfer call timed inside the process, for fio its own bandwidth.\n",
    ]


def rows_lines(rows, args):
    L = ["## Rows\n",
         (f"To keep the run near 4 minutes, the s3fs and rclone rows' dd and readers passes "
          f"stop after {args.fuse_cap} s (`timeout -s INT`; dd then reports what it has read, "
          "and the pass is *capped*: its MB/s is the bytes read over the wall time)"
          if args.fuse_cap else "The s3fs and rclone rows read the whole object "
          "(`--fuse-cap 0`)") +
         f", every fio run stops after {FIO_CAP_S} s, and the warm passes are limited to "
         "what a cache can serve: none for s3fs with default options (it keeps no data "
         "between opens, so a warm pass would repeat the cold one without the page-cache "
         "drop) or boto3, dd only for s3fs read-tuned (kernel_cache) and rclone (VFS "
         "cache).\n",
         "| row | cold means | reads (cold) | warm pass for |", "|---|---|---|---|"]
    for row in rows:
        if row.unavailable:
            L.append(f"| {row.name} | unavailable: {row.unavailable} | | |")
            continue
        ops = [o for o in OPS if o in row.cmds]
        L.append(f"| {row.name} | {row.cold_means} | {', '.join(OP_LABEL[o] for o in ops)} "
                 f"| {', '.join(OP_LABEL[o] for o in ops if o in row.warm_ops)} |")
    L.append("")
    return L


def seq_lines(rows):
    L = ["## Sequential and parallel reads\n",
         "Median, min and max over the successful passes. *peak RSS*: the largest process "
         "of the timed command (dd, or for rwsplit dd with the library and its fill "
         "threads; s3get; the boto3 child) by GNU time, median over passes; *daemon*: the "
         "FUSE daemon's peak RSS since its mount (VmHWM) after the pass; *capped*: passes "
         "stopped by the time cap, and the MB they read (median).\n",
         "| read | row | pass | median s | MB/s median | MB/s min | MB/s max | peak RSS MiB "
         "| daemon peak RSS MiB | ok runs | capped |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for op in ("dd", "readers"):
        for row in rows:
            for kind in KINDS:
                all_ = row.runs.get((op, kind), [])
                if not all_:
                    continue
                ok = row.ok_runs(op, kind)
                med, lo, hi = mbps_stats(row, op, kind)
                sec = statistics.median(r.p.seconds for r in ok) if ok else None
                rss = statistics.median(r.p.max_rss_kib for r in ok) / 1024 if ok else None
                hwm = med_extra(ok, "daemon_hwm_kib")
                capped = [r.extra["capped_bytes"] for r in ok if "capped_bytes" in r.extra]
                L.append(f"| {OP_LABEL[op]} | {row.name} | {kind} | {common.fmt(sec)} | "
                         f"{common.fmt(med, 0)} | {common.fmt(lo, 0)} | {common.fmt(hi, 0)} | "
                         f"{common.fmt(rss, 1)} | "
                         f"{common.fmt(hwm / 1024 if hwm else None, 1)} | "
                         f"{len(ok)}/{len(all_)} | " +
                         (f"{len(capped)}, {statistics.median(capped) / 1e6:.0f} MB"
                          if capped else "") + " |")
    L.append("")
    return L


def random_lines(rows, io_bytes, cap_s):
    L = ["## Random 256 KiB reads\n",
         f"fio's own numbers, medians over passes. *IOs*: the 256 KiB reads done "
         f"({io_bytes // BS} unless the {cap_s} s cap stopped the run first); latency is "
         "fio's completion latency (boto3: the get_object call and the body's read). "
         "Through rwsplit, a cold read of a chunk not yet fetched waits for that whole 8 MiB "
         "chunk (one ranged GET, on the reading thread when no fill thread has claimed it), "
         "while the 4 fill threads fetch the object from its start; a warm pass finds what "
         "the cold process fetched before it exited and fetches the rest the same way.\n",
         "| row | pass | MB/s median | MB/s min | MB/s max | IOPS | p50 ms | p99 ms | IOs | "
         "peak RSS MiB | ok runs |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for kind in KINDS:
            all_ = row.runs.get(("fio", kind), [])
            if not all_:
                continue
            ok = row.ok_runs("fio", kind)
            med, lo, hi = mbps_stats(row, "fio", kind)
            rss = statistics.median(r.p.max_rss_kib for r in ok) / 1024 if ok else None
            ios = med_extra(ok, "ios")
            L.append(f"| {row.name} | {kind} | {common.fmt(med, 1)} | {common.fmt(lo, 1)} | "
                     f"{common.fmt(hi, 1)} | {common.fmt(med_extra(ok, 'iops'), 0)} | "
                     f"{common.fmt(med_extra(ok, 'p50_ms'), 2)} | "
                     f"{common.fmt(med_extra(ok, 'p99_ms'), 2)} | "
                     f"{'–' if ios is None else f'{ios:.0f}'} | {common.fmt(rss, 1)} | "
                     f"{len(ok)}/{len(all_)} |")
    L.append("")
    return L


def target_lines(rows, rw):
    ceilings = [r for r in rows if r.kind == "ceiling"]

    def best(kind):
        return max(((mbps_stats(r, "dd", kind)[0] or 0, r.name) for r in ceilings),
                   default=(0, "none"))
    (cold, cold_name), (warm, warm_name) = best("cold"), best("warm")
    rw_cold = mbps_stats(rw, "dd", "cold")[0] if rw else None
    rw_warm = mbps_stats(rw, "dd", "warm")[0] if rw else None
    L = ["## Against DESIGN.md's target\n",
         f"DESIGN.md, \"Performance targets\": *{DESIGN_TARGET}*. rwsplit's cold sequential "
         "read (`dd`, empty cache) against the fastest ceiling row, cold server against cold "
         "server (the target's line); the other lines for context. rwsplit fills a large "
         "object with 8 MiB ranged GETs from 4 fill threads per process (reader/rd_lazy.c, "
         "FILLERS_PER_FILE, at most prefetch_concurrency) plus the reading thread when it "
         "needs a chunk nobody has claimed: about 4–5 GETs in flight.\n",
         "| comparison | rwsplit MB/s | ceiling MB/s | ratio (target ≥ 0.8×) |",
         "|---|---|---|---|",
         f"| **rwsplit dd cold / {cold_name} cold** | {common.fmt(rw_cold, 0)} | "
         f"{common.fmt(cold or None, 0)} | {ratio_target(rw_cold, cold)} |"]
    for c in ceilings:
        if c.name != cold_name:
            m = mbps_stats(c, "dd", "cold")[0]
            L.append(f"| rwsplit dd cold / {c.name} cold | {common.fmt(rw_cold, 0)} | "
                     f"{common.fmt(m, 0)} | {common.ratio(rw_cold, m)} |")
    L.append(f"| rwsplit dd cold / {warm_name} warm (MinIO's file in its page cache) | "
             f"{common.fmt(rw_cold, 0)} | {common.fmt(warm or None, 0)} | "
             f"{common.ratio(rw_cold, warm)} |")
    L.append(f"| rwsplit dd warm (from its cache) / {warm_name} warm | "
             f"{common.fmt(rw_warm, 0)} | {common.fmt(warm or None, 0)} | "
             f"{common.ratio(rw_warm, warm)} |")
    L.append("")
    rss = [r.p.max_rss_kib for op in OPS for kind in KINDS for r in rw.ok_runs(op, kind)] \
        if rw else []
    if rss:
        L.append(f"Peak RSS of rwsplit's reading processes: {max(rss) / 1024:.1f} MiB at most "
                 "over every pass (DESIGN.md: resident memory ≤ 64 MiB beyond the cache "
                 "budget; the cache itself is tmpfs pages, which read() does not map into "
                 "the process).\n")
    return L


def ratio_lines(rows, rw):
    others = [r for r in rows if r is not rw and not r.unavailable]
    L = ["## rwsplit as a ratio to every other row\n",
         "rwsplit's median MB/s over the other row's median MB/s in the same read and pass "
         "(above 1: rwsplit is faster; capped passes count with the MB/s of what they "
         "read). The ceiling rows only read sequentially.\n",
         "| read, pass | rwsplit MB/s | " + " | ".join(r.name for r in others) + " |",
         "|---|---|" + "---|" * len(others)]
    for op, kind in groups(rows):
        mine = mbps_stats(rw, op, kind)[0] if rw else None
        L.append(f"| {OP_LABEL[op]} {kind} | {common.fmt(mine, 0)} | " + " | ".join(
            common.ratio(mine, mbps_stats(r, op, kind)[0]) for r in others) + " |")
    L.append("")
    return L


def cpu_lines(rows):
    L = ["## CPU per pass (median seconds)\n",
         f"*client*: the timed command's process tree (plus the FUSE daemon for the s3fs and "
         f"rclone rows, rwsplit's fetch agent for rwsplit's); *server*: MinIO; *other*: the rest of the machine's busy CPU during "
         f"the pass (kernel threads, and anything else running: this machine has "
         f"{os.cpu_count()} CPUs and may be shared, so check it before trusting a slow pass); "
         "*steal*: taken by the hypervisor.\n",
         "| read | row | pass | wall s | client CPU s | server CPU s | other CPU s | steal s |",
         "|---|---|---|---|---|---|---|---|"]
    for op in OPS:
        for row in rows:
            for kind in KINDS:
                ok = row.ok_runs(op, kind)
                if ok:
                    L.append(f"| {OP_LABEL[op]} | {row.name} | {kind} | " + " | ".join(
                        f"{statistics.median(getattr(r.p, a) for r in ok):.2f}"
                        for a in ("seconds", "client_cpu", "server_cpu", "other_cpu", "steal"))
                        + " |")
    L.append("")
    return L


def summary_lines(rw, size, conf_text):
    L = ["## What rwsplit did (its read summaries, RWSPLIT_LOG=info, of the timed passes)\n",
         f"Summed over the processes of each pass ({READERS} dd in the readers' pass), median "
         f"over passes. The object has {-(-size // PART)} chunks of 8 MiB, each one ranged "
         "GET; a cold pass that fetched the whole object shows its size from the store. The "
         "warm pass of a partial (fio) read finds what the cold process's fill threads had "
         "fetched before it exited. *MB from cache* counts the whole object at every open "
         "of a complete cached copy, however much of it is then read.\n",
         "| read | pass | processes | GETs | MB from the store | MB from cache | warnings |",
         "|---|---|---|---|---|---|---|"]
    for op in OPS:
        for kind in KINDS:
            ok = rw.ok_runs(op, kind)
            if not ok:
                continue
            sums = [r.extra["summary"] for r in ok if r.extra.get("summary")]

            def med(k):
                return statistics.median(s[k] for s in sums) if sums else None
            probs = sorted({p for r in ok for p in r.extra.get("problems", [])})
            store, cache = med("bytes_store"), med("bytes_cache")
            L.append(f"| {OP_LABEL[op]} | {kind} | {med_extra(ok, 'summary_procs') or 0:.0f} | "
                     f"{common.fmt(med('gets'), 0)} | "
                     f"{common.fmt(None if store is None else store / 1e6, 1)} | "
                     f"{common.fmt(None if cache is None else cache / 1e6, 1)} | "
                     f"{'; '.join(f'`{p}`' for p in probs[:2]) or 'none'} |")
    L.append("")
    L.append("The rwsplit config (cache_dir and the endpoint are this run's):\n")
    L.append("```ini\n" + conf_text.strip() + "\n```\n")
    return L


def command_lines(rows):
    L = ["## Exact commands\n",
         "Run from the repository root, each under `/usr/bin/time -o FILE -f %M` (for the "
         "peak RSS); paths are this run's temp dirs. The s3get, boto3 and FUSE commands get "
         "the server's address and keys through `RWSPLIT_TEST_ENDPOINT`, "
         "`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`.\n"]
    for row in rows:
        if row.unavailable:
            continue
        if row.mount_line:
            L.append(f"- **{row.name}**, mounted with: `{row.mount_line}`")
        for op in OPS:
            if op in row.cmds:
                L.append(f"- **{row.name}**, {OP_LABEL[op]}: `{row.cmds[op][1]}`")
    L.append("")
    return L


def save_results(rows, args, src, io_bytes, cap_s, seconds):
    groups_ = []
    for op, kind in groups(rows):
        vals = {r.name: mbps_stats(r, op, kind)[0] for r in rows
                if mbps_stats(r, op, kind)[0] is not None}
        groups_.append({"label": f"{OP_LABEL[op]} {kind}", "values": vals})
    detail = {r.name: {f"{OP_LABEL[op]} {kind}": [
        {"ok": x.p.ok, "mbps": x.mbps, "seconds": x.p.seconds, "max_rss_kib": x.p.max_rss_kib,
         "client_cpu": x.p.client_cpu, "server_cpu": x.p.server_cpu, "note": x.p.note,
         **x.extra} for x in runs] for (op, kind), runs in r.runs.items()} for r in rows}
    common.save_json(JSON_NAME, {
        "title": f"One {src.size // MiB} MiB object: sequential, {READERS} readers, random 256K",
        "unit": "MB/s", "lower_is_better": False, "groups": groups_,
        "size_bytes": src.size, "runs": args.runs, "fio_io_bytes": io_bytes, "fio_cap_s": cap_s,
        "seconds": seconds, "passes": detail})


# -- main ---------------------------------------------------------------------------------


def machine_facts(lib, drop_ok, dirs):
    return common.host_facts() + common.tool_facts() + [
        ("rwsplit", common.lib_fact(lib)),
        ("coreutils dd", common.first_line(["dd", "--version"])),
        ("drop_caches", "works (before every cold pass)" if drop_ok else
         "does NOT work here: cold passes start with the page cache as it is"),
    ] + [(name, f"{path} ({common.fs_type(path)})") for name, path in dirs] + [
        ("load average at start", common.load_average())]


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=None,
                    help="object size in MiB (default 1024; --quick: 128)")
    ap.add_argument("--quick", action="store_true", help="a 128 MiB object, for trying out")
    ap.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--build", type=Path, default=Path("build"),
                    help="build directory holding lib/librwsplit.so (default build)")
    ap.add_argument("--seed", type=int, default=20240606, help="of the object's bytes")
    ap.add_argument("--no-fuse", action="store_true", help="skip the s3fs and rclone rows")
    ap.add_argument("--fuse-cap", type=int, default=FUSE_CAP_S,
                    help=f"seconds after which the s3fs and rclone rows' dd and readers passes "
                         f"stop (default {FUSE_CAP_S}; 0: read the whole object)")
    a = ap.parse_args(argv)
    a.size_mib = a.size_mib or (128 if a.quick else 1024)
    if not 16 <= a.size_mib <= 8192 or a.size_mib % READERS or not 1 <= a.runs <= 20:
        ap.error(f"--size-mib must be 16..8192 and a multiple of {READERS}; --runs 1..20")
    a.build = a.build if a.build.is_absolute() else REPO / a.build
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--boto3-child"]:
        return boto3_child(argv[1:])
    if argv[:1] == ["--check-child"]:
        return check_child(argv[1:])
    args = parse_args(argv)
    cmdline = common.command_line("large_file.py", argv)
    lib = args.build / "lib" / "librwsplit.so"
    if not lib.exists():
        sys.exit(f"{lib} is missing: run `make BUILD={args.build} all` first")
    if os.path.exists(ROUTE.rsplit("/", 1)[0]):
        sys.exit(f"{ROUTE.rsplit('/', 1)[0]} exists on disk: the route must be a path that "
                 "does not")
    signal.signal(signal.SIGTERM, _raise_exit)
    started = time.monotonic()
    size = args.size_mib * MiB
    io_bytes = min(FIO_IO_MIB * MiB, size // 4)
    work = Path(tempfile.mkdtemp(prefix="rwbench-large-", dir="/var/tmp"))   # root fs
    shm = Path(tempfile.mkdtemp(prefix="rwbench-large-", dir="/dev/shm"))
    server = mc = None
    try:
        drop_ok = common.drop_caches()
        (work / "local").mkdir()
        (shm / "local").mkdir()
        log(f"writing the {args.size_mib} MiB object")
        src = make_source(work / "local" / NAME, size, args.seed)
        tmpfs_path = shm / "local" / NAME
        shutil.copyfile(src.path, tmpfs_path)
        keys = work / "keys.txt"
        keys.write_text(f"{PREFIX}{NAME} {size}\n")
        exe = common.build_tool(work, "s3get", ["-lcurl"])
        server = MinioServer().start()
        mc = Mc(server)
        log(f"uploading to {server.endpoint} with {MC_BIN.name} cp")
        upload(mc, server, src)
        cache_dir = shm / "rwsplit-cache"
        conf = rwsplit_config(server, work, cache_dir, size)
        rw = rwsplit_row(server, lib, conf, cache_dir, work / "rwsplit.log", size, io_bytes,
                         FIO_CAP_S)
        rows = (ceiling_rows(server, exe, keys, size) + [rw] +
                fuse_rows(server, work, shm, size, io_bytes, FIO_CAP_S, args.fuse_cap,
                          args.no_fuse) +
                [boto3_row(server, size, io_bytes, FIO_CAP_S)] +
                local_rows(src, tmpfs_path, size, io_bytes, FIO_CAP_S))
        facts = machine_facts(lib, drop_ok, [
            ("local disk copy", src.path), ("tmpfs copy", tmpfs_path),
            ("rwsplit cache_dir and rclone VFS cache: under", shm),
            ("MinIO data", server.data_dir)])
        loads = []
        measure(rows, args.runs, server.pid, size, drop_ok, loads, work / "maxrss")
        log("checking contents through rwsplit")
        checks = rwsplit_checks(rw, src, cache_dir, work)
        for what, ok, detail in checks:
            log(f"check {what}: {'OK' if ok else 'FAILED'} {detail}")
        probe = mkdir_probe(rw.env)
        facts.append(("load average at end", common.load_average()))
        seconds = time.monotonic() - started
        write_report(args.out, args, cmdline, facts, loads, rows, checks, probe,
                     conf.read_text(), src, seconds, io_bytes, FIO_CAP_S)
        save_results(rows, args, src, io_bytes, FIO_CAP_S, seconds)
        log(f"wrote the {SECTION} section of {args.out} and {JSON_NAME}.json in {seconds:.0f} s")
        failed = sum(1 for r in rows for runs in r.runs.values() for x in runs if not x.p.ok)
        bad = sum(1 for _, ok, _ in checks if not ok)
        if failed or bad:
            log(f"{failed} passes FAILED, {bad} checks FAILED: see the report")
        return 1 if failed or bad else 0
    finally:
        common.release(server, mc, shm, work)


if __name__ == "__main__":
    sys.exit(main())
