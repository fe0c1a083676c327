#!/usr/bin/env python3
"""Checkpoint-write benchmark (issue 4): how long a 256 MiB checkpoint save takes to return to
the training loop through an rwsplit write route, next to the same save to local disk (with
and without fsync) and to tmpfs; and how long until the checkpoint is durable in the store,
next to native uploads of the same bytes (mc cp, boto3) and to the "SDK fallback" a training
loop does today without rwsplit (save to local disk, then upload before going on).

    .tools/venv/bin/python bench/checkpoint.py [--size-mib 256] [--runs 3] \
        [--out bench/RESULTS.md] [--build build]

Every timed save or upload is a fresh .tools/venv/bin/python process running
bench/checkpoint_child.py, which holds the checkpoint in memory before it starts and times
itself. Everything runs against one throw-away MinIO on 127.0.0.1 (tests/harness/minio.py)
that this script starts and stops. Writes its own section of --out (between
<!-- checkpoint:begin --> and <!-- checkpoint:end -->) and keeps the rest of the file.
See bench/README.md for what each row means.
"""

import argparse
import hashlib
import json
import os
import platform
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

from tests.harness.checks import object_sha, spool_leftovers  # noqa: E402
from tests.harness.minio import MC_BIN, MINIO_BIN, Mc, MinioServer  # noqa: E402
from bench.results_md import replace_section  # noqa: E402
from bench.small_files import (children_cpu, cpu_of, fs_type, host_facts, log,  # noqa: E402
                               machine_cpu, run_text)

MiB = 1 << 20
SECTION = "checkpoint"
VENV_PY = REPO / ".tools" / "venv" / "bin" / "python"
CHILD = REPO / "bench" / "checkpoint_child.py"
ROUTE = "/mnt/rwbench-ckpt/ckpt"    # the rwsplit write route (nothing exists there on disk)
BUCKET = "rwbench-ckpt"
ROUTE_PREFIX = "ckpt/"              # where the route's files land
NATIVE_PREFIX = "native/"           # where the native uploads land
# The route's upload settings: the defaults, written out so the report shows them. The drain
# timeout is below PASS_TIMEOUT so that a stuck upload is reported by the library at exit
# rather than cut short by our kill.
ROUTE_OPTIONS = {
    "multipart_threshold": "64MiB",
    "part_size": "16MiB",
    "upload_workers": 4,
    "part_concurrency": 4,
    "drain_timeout": "4m",
}
TUNED = {"threshold": 64 * MiB, "part_size": 16 * MiB, "concurrency": 4}   # the same for boto3
PASS_TIMEOUT = 300                  # seconds; a pass that takes longer is killed, counts failed
# Seconds between a pass's sync and the next child. With free page reporting (virtio-balloon)
# the kernel hands free memory back to the host 2 s after a large free (the previous pass's
# copy and process); a report that fires while the next child saves would take the memory
# its warm-up just freed (checkpoint_child.warm_memory).
SETTLE = 2.5
DESIGN_TARGET = ("a checkpoint save that returns to the training loop in ≤ 1.2× the time of "
                 "the same save to local disk")
SUMMARY_RE = re.compile(r"^rwsplit\[\d+\][^\n]*write summary: (\d+) files uploaded "
                        r"\((\d+) bytes\), (\d+) pending, (\d+) failed", re.MULTILINE)
REQUEST_RE = re.compile(r"^rwsplit\[\d+\] debug: ([A-Z]+) (\S+) -> (\d+)", re.MULTILINE)
PROBLEM_RE = re.compile(r"^rwsplit\[\d+\] (error|warn)[^\n]*", re.MULTILINE)


# -- the rows -----------------------------------------------------------------------------


@dataclass
class Pass:
    ok: bool
    note: str = ""
    save_s: float = None            # open -> close, timed by the child
    steps: dict = None              # the save's open_s, write_s, fsync_s, close_s
    upload_s: float = None          # the upload call (boto3: in the child; mc: process wall)
    durable_s: float = None         # rwsplit: child's open stamp -> the parent saw it exit
    exit_wait_s: float = None       # child's last stamp -> exit (teardown; rwsplit: drain)
    summary: str = ""               # rwsplit's write summary line
    uploads: int = None             # its "N files uploaded" (one file is saved per pass)
    client_cpu: float = 0.0         # CPU seconds of the child
    server_cpu: float = 0.0         # of MinIO
    other_cpu: float = 0.0          # the rest of the machine's busy CPU during the pass
    steal: float = 0.0


@dataclass
class Row:
    """One way of saving or uploading the checkpoint. argv(run) and target(run) give the
    command and where the bytes go in that run (a new file or key every run); check(run,
    stderr) returns problems found afterwards (untimed); cleanup(run) removes the copy."""
    name: str
    group: str                      # "save", "upload" or "fallback"
    where: str                      # in words, for the tables
    argv: object
    env: dict
    shown_env: dict
    check: object
    cleanup: object
    rwsplit: bool = False
    self_timed: bool = True         # the child prints its times (not mc: its process wall)
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


def save_rows(server, payload, size, local, shm, lib, conf, spool, s3, warm):
    src = payload.path
    def local_row(name, where, directory, fsync):
        path = lambda run: directory / f"save-{run}.bin"  # noqa: E731
        return Row(name, "save", where,
                   argv=lambda run: child_argv("save", path(run), "--src", src,
                                               *(["--fsync"] if fsync else []), warm=warm,
                                               warm_dir=directory),
                   env=plain_env(server), shown_env={},
                   check=lambda run, _err: check_local(path(run), size),
                   cleanup=lambda run: path(run).unlink(missing_ok=True))

    def rwsplit_row(name, fsync):
        tag = "fsync" if fsync else "plain"
        key = lambda run: f"{ROUTE_PREFIX}{tag}-{run}.bin"  # noqa: E731
        shown = {"LD_PRELOAD": lib, "RWSPLIT_CONFIG": conf, "RWSPLIT_LOG": "info"}
        return Row(name, "save", f"write route {ROUTE} -> s3://{BUCKET}/{ROUTE_PREFIX}, "
                                 f"spool {spool}",
                   argv=lambda run: child_argv("save", f"{ROUTE}/{tag}-{run}.bin", "--src",
                                               src, *(["--fsync"] if fsync else []),
                                               warm=warm, warm_dir=spool.parent),
                   env=dict(plain_env(server), **{k: str(v) for k, v in shown.items()}),
                   shown_env=shown,
                   check=lambda run, err: check_rwsplit(s3, key(run), payload.sha256, size, spool,
                                                         err),
                   cleanup=lambda run: s3.delete_object(Bucket=BUCKET, Key=key(run)),
                   rwsplit=True)

    return [
        local_row("local disk", f"{local} ({fs_type(local)})", local, False),
        local_row("local disk + fsync", f"{local} ({fs_type(local)}), os.fsync before close",
                  local, True),
        local_row("tmpfs (/dev/shm)", f"{shm} ({fs_type(shm)})", shm, False),
        rwsplit_row("rwsplit write route", False),
        rwsplit_row("rwsplit write route + fsync", True),
    ]


def upload_rows(server, mc, payload, size, s3, warm):
    def key(tag, run):
        return f"{NATIVE_PREFIX}{tag}-{run}.bin"

    def boto_row(name, how, extra):
        return Row(name, "upload", f"{payload} -> s3://{BUCKET}/{NATIVE_PREFIX}",
                   argv=lambda run: child_argv("upload", "--src", payload, "--bucket", BUCKET,
                                               "--key", key(how, run), "--how", how, *extra,
                                               warm=warm, warm_dir=payload.parent),
                   env=plain_env(server), shown_env={},
                   check=lambda run, _err: check_object(s3, key(how, run), size),
                   cleanup=lambda run: s3.delete_object(Bucket=BUCKET, Key=key(how, run)))

    tuned = ["--threshold", TUNED["threshold"], "--part-size", TUNED["part_size"],
             "--concurrency", TUNED["concurrency"]]
    mc_row = Row("mc cp", "upload", f"{payload} -> s3://{BUCKET}/{NATIVE_PREFIX}",
                 argv=lambda run: [str(MC_BIN), "--no-color", "cp", "--quiet", str(payload),
                                   mc.target(f"{BUCKET}/{key('mc', run)}")],
                 env=mc.env(), shown_env={"MC_CONFIG_DIR": mc.config_dir},
                 check=lambda run, _err: check_object(s3, key("mc", run), size),
                 cleanup=lambda run: s3.delete_object(Bucket=BUCKET, Key=key("mc", run)),
                 self_timed=False)
    return [
        mc_row,
        boto_row("boto3 upload_file, default TransferConfig", "upload_file", []),
        boto_row("boto3 upload_file, rwsplit's part size and concurrency", "upload_file_tuned",
                 tuned),
        boto_row("boto3 put_object, one PUT", "put_object", []),
    ]


def fallback_rows(server, payload, size, local, s3, warm):
    """Save to local disk, then upload that file, in one process: what the loop waits for."""
    def row(name, how):
        path = lambda run: local / f"fallback-{how}-{run}.bin"  # noqa: E731
        key = lambda run: f"{NATIVE_PREFIX}fallback-{how}-{run}.bin"  # noqa: E731

        def cleanup(run):
            path(run).unlink(missing_ok=True)
            s3.delete_object(Bucket=BUCKET, Key=key(run))

        return Row(name, "fallback", f"{local}, then s3://{BUCKET}/{NATIVE_PREFIX}",
                   argv=lambda run: child_argv("fallback", path(run), "--src", payload,
                                               "--bucket", BUCKET, "--key", key(run),
                                               "--how", how, warm=warm, warm_dir=local),
                   env=plain_env(server), shown_env={},
                   check=lambda run, _err: (check_local(path(run), size) +
                                            check_object(s3, key(run), size)),
                   cleanup=cleanup)

    return [row("SDK fallback: local save + boto3 upload_file (default)", "upload_file"),
            row("SDK fallback: local save + boto3 put_object", "put_object")]


# -- checks (untimed, after each pass) ----------------------------------------------------


def check_local(path, size):
    try:
        got = path.stat().st_size
    except OSError as e:
        return [f"{path}: {e}"]
    return [] if got == size else [f"{path}: {got} bytes, expected {size}"]


def head_size(s3, key):
    from botocore.exceptions import ClientError
    try:
        return s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    except ClientError as e:
        return f"HeadObject: {e.response['Error'].get('Code')}"


def check_object(s3, key, size):
    got = head_size(s3, key)
    return [] if got == size else [f"s3://{BUCKET}/{key}: {got}, expected {size} bytes"]


def check_rwsplit(s3, key, want, size, spool, stderr):
    """The object is complete and right (boto3: size and sha256), no multipart upload is
    left open, the spool holds no data file, and the process's write summary says every file
    was uploaded and none is pending or failed."""
    problems = []
    got = head_size(s3, key)
    if got != size:
        problems.append(f"s3://{BUCKET}/{key}: {got}, expected {size} bytes")
    else:
        n, digest = object_sha(s3, BUCKET, key)
        if (n, digest) != (size, want):
            problems.append(f"s3://{BUCKET}/{key}: {n} bytes sha256 {digest}, expected {want}")
    open_mpu = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    if open_mpu:
        problems.append(f"{len(open_mpu)} incomplete multipart uploads")
    left = [f"{rel} ({size} bytes)" for rel, size in spool_leftovers(spool)]
    if left:
        problems.append(f"spool {spool} still holds {left}")
    sums = SUMMARY_RE.findall(stderr)
    if len(sums) != 1:
        problems.append(f"{len(sums)} `write summary` lines, expected 1")
    elif int(sums[0][2]) or int(sums[0][3]) or not int(sums[0][0]):
        problems.append(f"write summary: {sums[0]}")
    problems += [f"logged: {m.group(0)}" for m in PROBLEM_RE.finditer(stderr)][:3]
    return problems


# -- timing -------------------------------------------------------------------------------


@dataclass
class ChildResult:
    rc: int
    timed_out: bool
    t_exit: float                   # time.time() as soon as waitpid returned
    wall_s: float
    stdout: str
    stderr: str
    client_cpu: float
    server_cpu: float
    other_cpu: float
    steal: float


def run_child(argv, env, out_dir, tag, server_pid):
    """Runs argv with stdout and stderr in files (no pipe for us to drain) and blocks in
    waitpid, so the moment it exits is seen at once; a timer kills its process group after
    PASS_TIMEOUT."""
    out_path, err_path = out_dir / f"{tag}.out", out_dir / f"{tag}.err"
    c0, s0 = children_cpu(), cpu_of(server_pid)
    m0, st0 = machine_cpu()
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
        rc = proc.wait()
        t_exit, wall = time.time(), time.perf_counter() - t0
    finally:
        timer.cancel()
    m1, st1 = machine_cpu()
    client, server = children_cpu() - c0, cpu_of(server_pid) - s0
    return ChildResult(rc, fired.is_set(), t_exit, wall, out_path.read_text(errors="replace"),
                       err_path.read_text(errors="replace"), client, server,
                       max(0.0, (m1 - m0) - client - server), st1 - st0)


def child_json(stdout):
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def one_pass(row, run, out_dir, server_pid):
    tag = f"{re.sub(r'[^a-z0-9]+', '-', row.name.lower()).strip('-')}-{run}"
    res = run_child(row.argv(run), row.env, out_dir, tag, server_pid)
    p = Pass(False, client_cpu=res.client_cpu, server_cpu=res.server_cpu,
             other_cpu=res.other_cpu, steal=res.steal)
    err_lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    sums = SUMMARY_RE.search(res.stderr)
    p.summary = sums.group(0).split("] ", 1)[-1] if sums else ""
    p.uploads = int(sums.group(1)) if sums else None
    j = child_json(res.stdout) if row.self_timed else {}
    if res.timed_out or res.rc != 0 or j is None:
        why = f"killed after {PASS_TIMEOUT} s" if res.timed_out else f"exit status {res.rc}"
        p.note = why + (f": {' | '.join(err_lines[-3:])}" if err_lines else "")
        return p
    p.save_s = j.get("save_s")
    p.steps = {k: j[k] for k in STEPS if k in j} or None
    p.upload_s = j.get("upload_s") if row.self_timed else res.wall_s
    if "t_end" in j:
        p.exit_wait_s = res.t_exit - j["t_end"]
    if row.rwsplit:
        p.durable_s = res.t_exit - j["t_open"]
    problems = row.check(run, res.stderr)
    p.ok = not problems
    p.note = "; ".join(problems)
    return p


def measure(rows, runs, out_dir, server_pid, loads):
    """runs rounds; in each, every row once, after a sync (so no pass pays for the previous
    one's dirty pages) and SETTLE seconds. Rounds interleave the rows so drift hits them
    alike."""
    for r in range(1, runs + 1):
        loads.append(Path("/proc/loadavg").read_text().strip())
        log(f"round {r}/{runs}, load average {loads[-1]}")
        for row in rows:
            os.sync()
            time.sleep(SETTLE)
            try:
                p = one_pass(row, r, out_dir, server_pid)
            except Exception as e:   # noqa: BLE001 - recorded, the other rows go on
                p = Pass(False, f"error: {e!r}")
            row.passes.append(p)
            log(f"run {r}/{runs} {row.name:56s} " + describe_pass(p))
            try:
                row.cleanup(r)
            except Exception as e:   # noqa: BLE001 - a leftover copy only costs space
                log(f"cleanup of {row.name} run {r}: {e!r}")


@dataclass
class Requests:
    """What one rwsplit save sent to the store, from its RWSPLIT_LOG=debug lines."""
    row: str
    counts: dict                    # "PUT 200" -> n
    summary: str
    problems: list


def request_diagnostics(rows, out_dir, server_pid):
    """One more save per rwsplit row, untimed, with RWSPLIT_LOG=debug (one line per request):
    how many requests the file took, to compare with what one upload needs."""
    out = []
    for row in (r for r in rows if r.rwsplit):
        env = dict(row.env, RWSPLIT_LOG="debug")
        res = run_child(row.argv("diag"), env, out_dir, f"diag-{len(out)}", server_pid)
        counts = {}
        for method, _target, status in REQUEST_RE.findall(res.stderr):
            counts[f"{method} {status}"] = counts.get(f"{method} {status}", 0) + 1
        sums = SUMMARY_RE.search(res.stderr)
        problems = [f"exit status {res.rc}"] if res.rc else []
        problems += row.check("diag", res.stderr)
        out.append(Requests(row.name, counts, sums.group(0).split("] ", 1)[-1] if sums else "",
                            problems))
        log(f"requests for one save, {row.name}: {counts}; {out[-1].summary}"
            + (f"; PROBLEMS: {problems}" if problems else ""))
        row.cleanup("diag")
    return out


def one_upload_requests(size):
    """The requests one upload of size bytes needs with ROUTE_OPTIONS: PUTs and POSTs."""
    threshold = int(ROUTE_OPTIONS["multipart_threshold"].removesuffix("MiB")) * MiB
    part = int(ROUTE_OPTIONS["part_size"].removesuffix("MiB")) * MiB
    if size < threshold:
        return 1, 0
    return -(-size // part), 2      # parts; CreateMultipartUpload + CompleteMultipartUpload


STEPS = ("open_s", "write_s", "fsync_s", "close_s")


def describe_pass(p):
    parts = [f"{k} {v:.3f} s" for k, v in (("save", p.save_s), ("upload", p.upload_s),
                                           ("durable", p.durable_s), ("exit wait", p.exit_wait_s))
             if v is not None]
    return ", ".join(parts) + ("" if p.ok else f"  FAILED: {p.note}")


# -- setup --------------------------------------------------------------------------------


@dataclass
class Payload:
    """The checkpoint's bytes on local disk, and their sha256."""
    path: Path
    sha256: str


def make_payload(path, size):
    """size random bytes (os.urandom) in path; the children read it into memory first."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MiB))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return Payload(path, h.hexdigest())


def write_config(server, work, cache_dir, spool):
    text = f"[global]\ncache_dir = {cache_dir}\n\n" + server.config_text(routes=[
        ("write", ROUTE, f"s3://{BUCKET}/{ROUTE_PREFIX}", dict(ROUTE_OPTIONS, spool=spool))])
    path = work / "rwsplit-ckpt.conf"
    path.write_text(text)
    return path


def page_reporting():
    """Whether freed guest memory goes back to the hypervisor (virtio-balloon free page
    reporting), which makes first touches of memory slow (see checkpoint_child.warm_memory)."""
    drv = Path("/sys/bus/virtio/drivers/virtio_balloon")
    bound = drv.is_dir() and any(e.name.startswith("virtio") for e in drv.iterdir())
    opts = [w for w in Path("/proc/cmdline").read_text().split() if "page_reporting" in w]
    return (("virtio_balloon bound" if bound else "no virtio_balloon") +
            (f"; kernel command line {' '.join(opts)}" if opts else ""))


def machine_facts(lib, dirs, server):
    import boto3
    import botocore
    head = run_text(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = run_text(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    lib_sum = hashlib.sha256(lib.read_bytes()).hexdigest()[:16]
    lib_time = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lib.stat().st_mtime))
    stamp = MINIO_BIN.parent / ".minio.version"
    vm = "; ".join(f"{k} {Path('/proc/sys/vm', k).read_text().strip()}" for k in
                   ("dirty_ratio", "dirty_background_ratio", "dirty_bytes",
                    "dirty_background_bytes", "dirty_expire_centisecs"))
    facts = host_facts() + [
        ("page-cache writeback (vm.*)", vm),
        ("memory balloon", page_reporting()),
        ("MinIO", run_text([str(MINIO_BIN), "--version"]).splitlines()[0] +
         (f" (built from {stamp.read_text().strip()})" if stamp.exists() else "")),
        ("mc", run_text([str(MC_BIN), "--version"]).splitlines()[0] + " (pinned in "
         "scripts/deps.sh)"),
        ("Python, boto3", f"{platform.python_version()} ({VENV_PY.relative_to(REPO)}); "
         f"boto3 {boto3.__version__}, botocore {botocore.__version__}"),
        ("rwsplit", f"git {head}" + (" + uncommitted changes to " + ", ".join(
            line.split(maxsplit=1)[-1] for line in dirty.splitlines()) if dirty else "")
         + f"; {lib} sha256 {lib_sum}…, built {lib_time}"),
        ("load average at start", Path("/proc/loadavg").read_text().strip()),
    ]
    facts += [(name, f"{d} ({fs_type(d)})") for name, d in dirs]
    facts.append(("MinIO data", f"{server.data_dir} ({fs_type(server.data_dir)})"))
    return facts


# -- report -------------------------------------------------------------------------------


def values(row, attr):
    return [getattr(p, attr) for p in row.passes if p.ok and getattr(p, attr) is not None]


def med(row, attr):
    v = values(row, attr)
    return statistics.median(v) if v else None


def stat_cells(row, attr, size=None):
    """median | min | max [| MiB/s at the median] | ok runs"""
    v = values(row, attr)
    n_ok = sum(1 for p in row.passes if p.ok)
    runs = f"{n_ok}/{len(row.passes)}"
    if not v:
        return "failed | | |" + (" |" if size else "") + f" {runs}"
    m = statistics.median(v)
    rate = f" {size / MiB / m:.0f} |" if size else ""
    return f"{m:.3f} | {min(v):.3f} | {max(v):.3f} |{rate} {runs}"


def sum_med(row):
    """A fallback pass's total: the save and the upload, one after the other."""
    v = [p.save_s + p.upload_s for p in row.passes if p.ok and p.save_s is not None
         and p.upload_s is not None]
    return v


def total_cells(row):
    v = sum_med(row)
    if not v:
        return "failed | | "
    return f"{statistics.median(v):.3f} | {min(v):.3f} | {max(v):.3f}"


def ratio_line(label, target, num, den, sides):
    """num / den in seconds (lower is better for num); target like "≤ 1.2×"."""
    if num is None or den is None:
        return f"| {label} | {target} | n/a (a side failed) | {sides} |"
    r = num / den
    verdict = ""
    if target:
        verdict = " (meets)" if r <= float(target.strip("≤× ")) else " (**misses**)"
    return f"| {label} | {target} | {r:.2f}×{verdict} | {sides} |"


def by_name(rows, name):
    return next(r for r in rows if r.name == name)


def fmt(x):
    return "n/a" if x is None else f"{x:.3f} s"


def write_report(out, args, cmdline, facts, loads, rows, requests, conf_text, payload,
                 total_seconds):
    size = args.size_mib * MiB
    saves = [r for r in rows if r.group == "save"]
    uploads = [r for r in rows if r.group == "upload"]
    fallbacks = [r for r in rows if r.group == "fallback"]
    local, local_fsync = by_name(rows, "local disk"), by_name(rows, "local disk + fsync")
    tmpfs = by_name(rows, "tmpfs (/dev/shm)")
    rw = by_name(rows, "rwsplit write route")
    rw_fsync = by_name(rows, "rwsplit write route + fsync")
    L = []
    L.append("# rwsplit benchmark: checkpoint writes (issue 4)\n")
    L.append(f"Generated by `{cmdline}` (run by `make bench`) in {total_seconds:.0f} s. Do not "
             "edit by hand: run it again.\n")
    L.append(f"The checkpoint: {args.size_mib} MiB of random bytes (os.urandom, sha256 "
             f"`{payload.sha256[:16]}…`), held in memory by a fresh `.tools/venv/bin/python` "
             "process (`bench/checkpoint_child.py`) before it starts timing, then written to a "
             "new file in 8 MiB `os.write` calls and closed. The child times open → close "
             "itself (`time.perf_counter`). Every timed save or upload is such a child; "
             f"each row ran {args.runs} times, rounds interleave the rows, and `sync` and "
             f"{SETTLE} s of rest come before every pass (so no pass pays for the previous "
             "one's dirty pages). Tables give the median and min/max seconds of the "
             "successful passes. The store is one MinIO on 127.0.0.1 started by the script.\n")
    L.append("Before it starts timing, every child writes and unlinks a scratch file of "
             f"{2 * args.size_mib} MiB on the filesystem its save goes to (`--warm`, untimed; "
             "unlinked before writeback, so no disk I/O): on a VM whose freed memory goes back "
             "to the hypervisor (see *memory balloon* below) the first touch of such memory "
             "costs a fault in the host per page (where this script was written, the same "
             "256 MiB save took 0.06 s or 1 s without the warm-up, depending on what ran before "
             "it). The rows then compare the save paths, not the hypervisor's memory."
             if not args.no_warm else
             "Run with `--no-warm`: the children did **not** warm memory before timing, so a "
             "save's time depends on whether its page-cache pages were backed by the host "
             "(see *memory balloon* below).")
    L.append("")

    L.append("## Machine\n")
    L.append("| | |\n|---|---|")
    L += [f"| {k} | {v} |" for k, v in facts]
    L.append(f"| load average before each round | {' / '.join(loads)} |")
    L.append("")

    L.append("## rwsplit config used\n")
    L.append("```ini")
    L.append(conf_text.rstrip("\n"))
    L.append("```\n")

    L.append("## 1. Save returns to the caller\n")
    L.append("open → last write → (fsync →) close, as the training loop sees it. *exit wait*: "
             "from the child's last statement to the moment the parent saw it exit "
             "(interpreter teardown; under rwsplit also the wait for the upload queue to "
             "drain).\n")
    L.append("| target | where | median s | min s | max s | MiB/s at median | ok runs | "
             "exit wait (median s) |")
    L.append("|---|---|---|---|---|---|---|---|")
    for r in saves:
        wait = med(r, "exit_wait_s")
        L.append(f"| {r.name} | {r.where} | {stat_cells(r, 'save_s', size)} | "
                 + ("" if wait is None else f"{wait:.3f}") + " |")
    L.append("")
    L.append("Where the save's time goes (median milliseconds of each step, timed by the "
             "child):\n")
    L.append("| target | open | writes | fsync | close |\n|---|---|---|---|---|")
    for r in saves:
        cells = []
        for k in STEPS:
            v = [p.steps[k] for p in r.passes if p.ok and p.steps and k in p.steps]
            cells.append(f"{statistics.median(v) * 1000:.1f}" if v else "")
        L.append(f"| {r.name} | " + " | ".join(cells) + " |")
    L.append("")

    L.append("## 2. Time to durable (the object complete in the store)\n")
    L.append("- **rwsplit write route**: the child's `time.time()` at open → the moment the "
             "parent's `waitpid` returned (process exit waits for the upload queue to drain). "
             "Afterwards (untimed) boto3 checked the object's size and sha256, that no "
             "multipart upload was left open, and that the spool held no data file.\n"
             "- **rwsplit write route + fsync**: `fsync` on a write route uploads at once, so "
             "the object is durable when close returns: the save time above; exit → open "
             "shown as well.\n"
             "- **SDK fallback**: one child saves to local disk (as row *local disk*), then "
             "uploads that file with boto3 before returning to the loop: save + upload.\n"
             "- **native uploads** of the same bytes from a local file already in the page "
             "cache: only the upload (boto3: the call, in a child whose client already made "
             "one request; mc: the whole `mc cp` process, start-up included).\n")
    L.append("| way | what is timed | median s | min s | max s | ok runs |")
    L.append("|---|---|---|---|---|---|")
    L.append(f"| rwsplit write route | open → process exit | {stat_cells(rw, 'durable_s')} |")
    L.append(f"| rwsplit write route + fsync | open → fsync → close | "
             f"{stat_cells(rw_fsync, 'save_s')} |")
    L.append(f"| rwsplit write route + fsync | open → process exit | "
             f"{stat_cells(rw_fsync, 'durable_s')} |")
    for r in fallbacks:
        n_ok = sum(1 for p in r.passes if p.ok)
        L.append(f"| {r.name} | local save + upload | {total_cells(r)} | "
                 f"{n_ok}/{len(r.passes)} |")
    for r in uploads:
        L.append(f"| {r.name} | upload only (file on disk, warm) | "
                 f"{stat_cells(r, 'upload_s')} |")
    L.append("")
    L.append("The fallback rows' parts (median s): " + "; ".join(
        f"{r.name}: save {fmt(med(r, 'save_s'))}, upload {fmt(med(r, 'upload_s'))}"
        for r in fallbacks) + ".\n")
    L.append(f"Native upload settings: mc as pinned (its own part size and parallelism); "
             f"boto3 default TransferConfig = multipart above 8 MiB, 8 MiB parts, 10 threads; "
             f"\"rwsplit's part size and concurrency\" = TransferConfig(multipart_threshold="
             f"{TUNED['threshold'] // MiB} MiB, multipart_chunksize={TUNED['part_size'] // MiB} "
             f"MiB, max_concurrency={TUNED['concurrency']}); put_object = one PUT of the whole "
             "file (what oss2's put_object_from_file does). On plain http botocore always "
             "signs the payload (a sha256 pass over the bytes); rwsplit sends it unsigned "
             "(`payload_signing = unsigned`, the default); how mc signs was not checked.\n")

    L.append("## 3. Ratios\n")
    L.append(f"DESIGN.md, \"Performance targets\": *{DESIGN_TARGET}*.\n")
    L.append("Each ratio is the first side's median seconds over the second side's (below 1 "
             "means the first side is faster).\n")
    L.append("| ratio | target | measured | sides |\n|---|---|---|---|")
    L.append(ratio_line("rwsplit save returns / local disk save", "≤ 1.2×", med(rw, "save_s"),
                        med(local, "save_s"), "the DESIGN target: no fsync on either side"))
    L.append(ratio_line("rwsplit save returns / tmpfs save", "", med(rw, "save_s"),
                        med(tmpfs, "save_s"), ""))
    L.append(ratio_line("rwsplit save returns / local disk + fsync save", "", med(rw, "save_s"),
                        med(local_fsync, "save_s"), "a durable local save, for reference"))
    L.append(ratio_line("rwsplit + fsync save / local disk + fsync save", "",
                        med(rw_fsync, "save_s"), med(local_fsync, "save_s"),
                        "durable in the store vs durable on local disk"))
    best = min(((med(r, "upload_s"), r.name) for r in uploads if med(r, "upload_s")),
               default=(None, "none"))
    L.append(ratio_line("rwsplit time to durable / best native upload", "",
                        med(rw, "durable_s"), best[0],
                        f"best native: {best[1]} ({fmt(best[0])}); rwsplit's includes the "
                        "save"))
    up_part = [p.durable_s - p.save_s for p in rw.passes if p.ok and p.durable_s is not None]
    L.append(ratio_line("rwsplit (time to durable − save) / best native upload", "",
                        statistics.median(up_part) if up_part else None, best[0],
                        "the upload and exit part alone"))
    L.append(ratio_line("rwsplit + fsync save / best native upload", "",
                        med(rw_fsync, "save_s"), best[0], "durable at close"))
    for r in fallbacks:
        tot = sum_med(r)
        tot = statistics.median(tot) if tot else None
        L.append(ratio_line(f"rwsplit time to durable / {r.name}", "", med(rw, "durable_s"),
                            tot, "both: open → object in the store"))
    for r in fallbacks:
        tot = sum_med(r)
        tot = statistics.median(tot) if tot else None
        L.append(ratio_line(f"training loop blocked: rwsplit / {r.name}", "",
                            med(rw, "save_s"), tot,
                            f"rwsplit {fmt(med(rw, 'save_s'))} vs {fmt(tot)}"))
    L.append("")

    L.append("## Checks (untimed, after each pass)\n")
    L.append("rwsplit rows: boto3 HeadObject size and a full GetObject sha256 against the "
             "checkpoint's, ListMultipartUploads empty, no data file left in the spool (a "
             "lock file may stay), exactly one `write summary` line (`RWSPLIT_LOG=info`) with "
             "0 pending and 0 failed, and no `error`/`warn` line. Local rows: the file's size. "
             "Native and fallback rows: the object's size (HeadObject). Each copy is removed "
             "after its check.\n")
    for r in saves:
        if r.rwsplit:
            sums = sorted(set(p.summary for p in r.passes if p.summary))
            n_ok = sum(1 for p in r.passes if p.ok)
            odd = [p.uploads for p in r.passes if p.uploads not in (None, 1)]
            L.append(f"- {r.name}: {n_ok}/{len(r.passes)} passes passed every check; summary "
                     f"lines seen: " + ("; ".join(f"`{s}`" for s in sums) or "none")
                     + (f". **Odd**: one file was written, but the summary counts {odd} "
                        "uploads (see the requests below)" if odd else ""))
    L.append("")
    puts, posts = one_upload_requests(size)
    L.append("### rwsplit requests to the store for one save (untimed, RWSPLIT_LOG=debug)\n")
    L.append(f"One more save per rwsplit row after the timed runs, with one debug line per "
             f"request. One upload of {args.size_mib} MiB with this config needs {puts} PUT"
             + (f" (parts) and {posts} POST (create and complete the multipart upload)"
                if posts else "") + ".\n")
    L.append("| row | requests (method status: count) | uploads of the file | write summary | "
             "checks |\n|---|---|---|---|---|")
    for q in requests:
        n_put = sum(v for k, v in q.counts.items() if k.startswith("PUT "))
        L.append(f"| {q.row} | {', '.join(f'{k}: {v}' for k, v in sorted(q.counts.items()))} | "
                 f"{n_put / puts:g} | `{q.summary}` | "
                 f"{'; '.join(q.problems) if q.problems else 'OK'} |")
    if any(sum(v for k, v in q.counts.items() if k.startswith("PUT ")) > puts for q in requests):
        L.append("\n**Odd**: a row above sent the file to the store more than once for one "
                 "save.")
    L.append("")

    L.append("## CPU per pass (median seconds)\n")
    L.append(f"*child*: the timed process (its threads included); *MinIO*: the server; "
             f"*other*: the rest of the machine's busy CPU during the pass (kernel writeback "
             f"threads, and anything else running: a large value means the pass shared the "
             f"{os.cpu_count()} CPUs with someone); *steal*: taken by the hypervisor. Covers the "
             "child's whole life (reading the checkpoint in, interpreter start and exit).\n")
    L.append("| row | child CPU s | MinIO CPU s | other CPU s | steal s |\n|---|---|---|---|---|")
    for r in rows:
        ok = [p for p in r.passes if p.ok]
        if ok:
            L.append(f"| {r.name} | " + " | ".join(
                f"{statistics.median(getattr(p, a) for p in ok):.2f}"
                for a in ("client_cpu", "server_cpu", "other_cpu", "steal")) + " |")
    L.append("")

    failures = [(r.name, i + 1, p.note) for r in rows for i, p in enumerate(r.passes)
                if not p.ok]
    L.append("## Failed passes\n")
    if failures:
        L.append("A failed pass is left out of the statistics above.\n")
        L += [f"- {name}, run {i}: {note}" for name, i, note in failures]
    else:
        L.append("None.")
    L.append("")

    L.append("## Exact commands\n")
    L.append("Run from the repository root; shown for run 1 (run N writes `…-N.bin`); paths "
             "are this run's temp dirs, the boto3 children get the server's address and keys "
             "through `RWSPLIT_TEST_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, "
             "`AWS_REGION`.\n")
    for r in rows:
        argv = [os.path.relpath(a, REPO) if a.startswith(str(REPO)) else a for a in r.argv(1)]
        env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in r.shown_env.items())
        L.append(f"- **{r.name}**: `{(env + ' ') if env else ''}{shlex.join(argv)}`")
    L.append("")

    L.append("## Every pass (seconds; x = failed)\n")
    L.append("| row | save | upload | durable (rwsplit) | exit wait |\n|---|---|---|---|---|")
    for r in rows:
        cells = []
        for a in ("save_s", "upload_s", "durable_s", "exit_wait_s"):
            vals = [getattr(p, a) for p in r.passes]
            cells.append(", ".join("—" if v is None else f"{v:.3f}" + ("" if p.ok else "x")
                                   for v, p in zip(vals, r.passes))
                         if any(v is not None for v in vals) else "")
        L.append(f"| {r.name} | " + " | ".join(cells) + " |")
    L.append("")
    replace_section(out, SECTION, "\n".join(L))


# -- main ---------------------------------------------------------------------------------


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=256, help="checkpoint size (default 256)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--build", type=Path, default=Path("build"),
                    help="build directory holding lib/librwsplit.so (default build)")
    ap.add_argument("--no-warm", action="store_true",
                    help="children do not write and unlink a scratch file of twice the "
                         "checkpoint's size before timing (bench/checkpoint_child.py, "
                         "warm_memory)")
    a = ap.parse_args(argv)
    if not 1 <= a.size_mib <= 4096 or not 1 <= a.runs <= 20:
        ap.error("--size-mib must be 1..4096 and --runs 1..20")
    a.build = a.build if a.build.is_absolute() else REPO / a.build
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    py = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) \
        else "python3"
    cmdline = f"{py} bench/checkpoint.py " + shlex.join(argv)
    lib = args.build / "lib" / "librwsplit.so"
    for need in (lib, args.build / "lib" / "librwsplit-s3.so", VENV_PY):
        if not need.exists():
            sys.exit(f"{need} is missing: run `make BUILD={args.build} all` (and "
                     "scripts/deps.sh for the venv) first")
    if os.path.exists(ROUTE.rsplit("/", 1)[0]):
        sys.exit(f"{ROUTE.rsplit('/', 1)[0]} exists on disk: the route must be a path that "
                 "does not")
    signal.signal(signal.SIGTERM, _raise_exit)
    started = time.monotonic()
    size = args.size_mib * MiB
    # The local-disk saves and the spool share the root filesystem; MinIO's data dir (a temp
    # dir from the harness) is there too.
    work = Path(tempfile.mkdtemp(prefix="rwbench-ckpt-", dir="/var/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="rwbench-ckpt-", dir="/dev/shm"))
    server = mc = None
    try:
        local, spool, logs = work / "local", work / "spool", work / "logs"
        for d in (local, spool, logs, shm / "save"):
            d.mkdir()
        log(f"writing the {args.size_mib} MiB checkpoint to {work / 'payload.bin'}")
        payload = make_payload(work / "payload.bin", size)
        server = MinioServer().start()
        mc = Mc(server)
        mc.mb(BUCKET)
        s3 = server.boto3_client()
        conf = write_config(server, work, shm / "cache", spool)
        facts = machine_facts(lib, [("local disk dir (rows local disk, SDK fallback)", local),
                                    ("rwsplit spool", spool), ("tmpfs dir", shm / "save"),
                                    ("checkpoint source (native uploads)", payload.path)], server)
        warm = 0 if args.no_warm else 2 * size
        rows = (save_rows(server, payload, size, local, shm / "save", lib, conf, spool, s3,
                          warm) +
                fallback_rows(server, payload.path, size, local, s3, warm) +
                upload_rows(server, mc, payload.path, size, s3, warm))
        loads = []
        measure(rows, args.runs, logs, server.pid, loads)
        requests = request_diagnostics(rows, logs, server.pid)
        facts.append(("load average at end", Path("/proc/loadavg").read_text().strip()))
        write_report(args.out, args, cmdline, facts, loads, rows, requests, conf.read_text(),
                     payload, time.monotonic() - started)
        log(f"wrote the {SECTION} section of {args.out}")
        failed = sum(1 for r in rows for p in r.passes if not p.ok)
        if failed:
            log(f"{failed} passes FAILED: see the report's 'Failed passes'")
        return 1 if failed else 0
    finally:
        if mc is not None:
            mc.close()
        if server is not None:
            server.stop()
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
