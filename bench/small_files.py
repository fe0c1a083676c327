#!/usr/bin/env python3
"""Small-file read benchmark (issue 3): thousands of ~110 KB objects read with

    find ROOT -type f | xargs -P4 -n 50 cat > /dev/null

cold, then warm, through rwsplit (prefetch = listing and off), s3fs-fuse (default and
read-tuned options), local disk and tmpfs, next to the server's own ceiling for that object
size (bench/s3get.c: libcurl multi, 4 and 16 GETs in flight). Everything runs against one
throw-away MinIO on loopback (tests/harness/minio.py) that this script starts and stops.

    .tools/venv/bin/python bench/small_files.py [--files 4000] [--runs 3] [--out bench/RESULTS.md]

See bench/README.md for what each row means. Speed is measured here, never in unit tests.
"""

import argparse
import atexit
import datetime
import hashlib
import os
import platform
import random
import resource
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

from tests.harness.minio import MC_BIN, MINIO_BIN, Mc, MinioServer, child_env  # noqa: E402
from bench.results_md import replace_section  # noqa: E402

LIB = REPO / "build" / "lib" / "librwsplit.so"
S3GET_SRC = REPO / "bench" / "s3get.c"
ROUTE = "/mnt/rwbench/data"         # the rwsplit read route (nothing exists there on disk)
BUCKET = "rwbench"
PREFIX = "data/"
NDIRS = 4
SIZE_MIN, SIZE_MAX = 80_000, 140_000  # bytes; "KB" and "MB" below are powers of 1000
READ_CMD = "find {root} -type f | xargs -P4 -n 50 cat > /dev/null"
# The same, but a cat killed by a signal is reported on stderr instead of stopping xargs
# (GNU xargs gives up at the first child killed by a signal). A diagnostic row only.
TOLERANT_CMD = ("find {root} -type f | xargs -P4 -n 50 sh -c 'cat \"$@\" > /dev/null; s=$?; "
                "if [ $s -ge 128 ]; then echo \"rwbench: cat died of signal $((s - 128))\" >&2; "
                "exit 0; fi; exit $s' sh")
DIED_RE = re.compile(r"rwbench: (\S+) died of signal (\d+)")
PASS_TIMEOUT = 300                  # seconds; one pass that takes longer counts as failed
MOUNT_TIMEOUT = 20
OVERHEAD_N = 100                    # processes started by the start-up cost measurement
S3FS_DEFAULT_OPTS = "url={url},use_path_request_style,passwd_file={pw}"
S3FS_TUNED_EXTRA = "kernel_cache,max_stat_cache_size=100000,parallel_count=20"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_text(cmd, **kw):
    """Output of a short command, or a note saying why there is none."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable ({e})"


# -- machine and page cache ---------------------------------------------------------------


def drop_caches():
    """sync; echo 3 > /proc/sys/vm/drop_caches. True when the kernel accepted it."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def fs_type(path):
    out = run_text(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", str(path)])
    return out.splitlines()[0] if out else "?"


def host_facts():
    """(name, value) rows every benchmark report starts with: date, CPUs, memory, kernel."""
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return [
        ("date", datetime.datetime.now().isoformat(timespec="seconds")),
        ("nproc", str(os.cpu_count())),
        ("CPU", cpu),
        ("memory", f"{mem_kb / 1024 / 1024:.1f} GiB"),
        ("kernel", platform.release()),
    ]


def machine_facts(drop_ok, local_dir, shm_dir):
    minio_ver = run_text([str(MINIO_BIN), "--version"]).splitlines()
    stamp = MINIO_BIN.parent / ".minio.version"
    s3fs = shutil.which("s3fs")
    head = run_text(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    lib_sum = hashlib.sha256(LIB.read_bytes()).hexdigest()[:16] if LIB.exists() else "?"
    lib_time = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(LIB.stat().st_mtime)) \
        if LIB.exists() else "?"
    dirty = run_text(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return host_facts() + [
        ("MinIO", " / ".join(minio_ver[:1]) +
         (f" (built from {stamp.read_text().strip()})" if stamp.exists() else "")),
        ("s3fs", run_text([s3fs, "--version"]).splitlines()[0] if s3fs else "not installed"),
        ("curl", run_text(["curl", "--version"]).splitlines()[0]),
        ("find/xargs/cat", "; ".join(run_text([t, "--version"]).splitlines()[0]
                                     for t in ("find", "xargs", "cat"))),
        ("rwsplit", f"git {head}" + (" + uncommitted changes to tracked files" if dirty else "")
         + f"; build/lib/librwsplit.so sha256 {lib_sum}…, built {lib_time}"),
        ("load average at start", Path("/proc/loadavg").read_text().strip()),
        ("drop_caches", "works (sync; echo 3 > /proc/sys/vm/drop_caches before every cold pass)"
         if drop_ok else "does NOT work here: cold passes start with the page cache as it is"),
        ("local disk dir", f"{local_dir} ({fs_type(local_dir)})"),
        ("tmpfs dir", f"{shm_dir} ({fs_type(shm_dir)})"),
        ("MinIO data", "a temp dir on the root filesystem (harness default)"),
    ]


# -- data set -----------------------------------------------------------------------------


@dataclass
class Dataset:
    root: Path                     # .../data, holding d0..d3
    files: list                    # (relative path, size, sha256 hex)

    @property
    def total_bytes(self):
        return sum(size for _, size, _ in self.files)


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
    mc.mb(BUCKET)
    mc.run("cp", "--recursive", "--quiet", f"{dataset.root}/", mc.target(f"{BUCKET}/{PREFIX}"),
           timeout=900)
    s3 = server.boto3_client()
    count = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX):
        for obj in page.get("Contents", []):
            count += 1
            size += obj["Size"]
    if count != len(dataset.files) or size != dataset.total_bytes:
        raise RuntimeError(f"upload incomplete: {count} objects / {size} bytes in the bucket, "
                           f"expected {len(dataset.files)} / {dataset.total_bytes}")


# -- timing -------------------------------------------------------------------------------


@dataclass
class Pass:
    seconds: float
    ok: bool
    note: str = ""
    died: int = 0                  # crash-tolerant rows: children killed by a signal
    client_cpu: float = 0.0        # CPU seconds of the command's processes (+ s3fs daemon)
    server_cpu: float = 0.0        # CPU seconds of MinIO during the pass
    other_cpu: float = 0.0         # the rest of the machine's busy CPU (kernel threads, others)
    steal: float = 0.0             # CPU seconds the hypervisor gave to someone else


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """User + system CPU seconds of a live process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_cpu():
    """(busy, steal) CPU seconds of the whole machine so far, all CPUs summed."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    return busy / _TICK, (v[7] if len(v) > 7 else 0) / _TICK


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv, env, timeout=PASS_TIMEOUT, server_pid=None, daemon_pid=None):
    """Runs argv once, wall-clock timed. A non-zero status or a timeout is a failed pass.
    Also the CPU the command's process tree used (plus daemon_pid's, e.g. s3fs) and the
    server's."""
    daemon_pid = daemon_pid() if callable(daemon_pid) else daemon_pid
    c0, s0, d0 = children_cpu(), cpu_of(server_pid), cpu_of(daemon_pid)
    (m0, st0) = machine_cpu()
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Pass(time.perf_counter() - t0, False, f"timed out after {timeout} s")
    dt = time.perf_counter() - t0
    (m1, st1) = machine_cpu()
    client = children_cpu() - c0 + (cpu_of(daemon_pid) - d0 if daemon_pid else 0.0)
    server = cpu_of(server_pid) - s0 if server_pid else 0.0
    others = max(0.0, (m1 - m0) - client - server)
    steal = st1 - st0
    err = p.stderr.decode(errors="replace").strip()
    lines = err.splitlines()
    died = DIED_RE.findall(err)
    if p.returncode != 0:
        note = f"exit status {p.returncode}" + (f": {' | '.join(lines[:3])}" if lines else "")
        return Pass(dt, False, note, len(died), client, server, others, steal)
    sigs = sorted(set(sig for _, sig in died))
    note = (f"{len(died)} children killed by signal{'s' if len(sigs) > 1 else ''} "
            f"{', '.join(sigs)}" if died else (lines[0] if lines else ""))
    return Pass(dt, True, note, len(died), client, server, others, steal)


def shell_argv(cmd):
    return ["bash", "-c", cmd]


# -- what is measured ---------------------------------------------------------------------


@dataclass
class Row:
    """One way of reading the data set. prepare() runs before each cold pass (untimed);
    cleanup() after the warm pass. passes: "cold" and "warm" lists of Pass."""
    name: str
    command: str                   # exactly what was timed, as a shell line
    argv: list
    env: dict
    prepare: object = None
    cleanup: object = None
    cold_means: str = ""
    unavailable: str = ""
    root: Path = None              # what find walks, for the read rows
    tolerant: bool = False         # TOLERANT_CMD instead of READ_CMD
    daemon_pid: object = None      # callable: a daemon whose CPU counts as the client's
    passes: dict = field(default_factory=lambda: {"cold": [], "warm": []})


def env_line(extra):
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in extra.items())


def read_row(name, root, env, env_shown=None, tolerant=False, **kw):
    cmd = (TOLERANT_CMD if tolerant else READ_CMD).format(root=root)
    shown = f"{env_line(env_shown)} bash -c {shlex.quote(cmd)}" if env_shown else cmd
    return Row(name, shown, shell_argv(cmd), env, root=Path(root), tolerant=tolerant, **kw)


def rwsplit_config(server, work, cache_dir, prefetch, total_bytes):
    text = f"[global]\ncache_dir = {cache_dir}\n\n"
    options = {"prefetch": prefetch}
    if total_bytes > 900 << 20:          # the default 1 GiB budget would evict
        options["cache"] = f"{2 * total_bytes >> 20}MiB"
    text += server.config_text(routes=[("read", ROUTE, f"s3://{BUCKET}/{PREFIX}", options)])
    path = work / f"rwsplit-{prefetch}.conf"
    path.write_text(text)
    return path


def empty_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def rwsplit_rows(server, work, shm, total_bytes, crash_tolerant):
    rows = []
    variants = [("listing", False), ("off", False)] + ([("listing", True)] if crash_tolerant
                                                        else [])
    for prefetch, tolerant in variants:
        cache = shm / f"cache-{prefetch}"
        conf = rwsplit_config(server, work, cache, prefetch, total_bytes)
        extra = {"LD_PRELOAD": LIB, "RWSPLIT_CONFIG": conf}
        name = f"rwsplit, prefetch = {prefetch}" + (", crash-tolerant xargs" if tolerant else "")
        rows.append(read_row(
            name, ROUTE, server.child_env(extra), extra, tolerant=tolerant,
            prepare=lambda cache=cache: empty_dir(cache),
            cold_means="empty cache_dir"))
    return rows


class S3fsMount:
    """s3fs in the foreground (-f) as our child; mount() waits for the mount point, unmount()
    always runs fusermount -u and reaps the process."""

    live = set()

    def __init__(self, server, mnt, opts, log_path):
        self.server, self.mnt, self.opts, self.log_path = server, mnt, opts, log_path
        self.proc = None

    def argv(self):
        return ["s3fs", BUCKET, str(self.mnt), "-f", "-o", self.opts]

    def mount(self):
        self.mnt.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(self.argv(), env=child_env(), stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, start_new_session=True)
        S3fsMount.live.add(self)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3fs exited with {self.proc.returncode}; "
                                   f"see {self.log_path}")
            if os.path.ismount(self.mnt):
                return
            time.sleep(0.05)
        self.unmount()
        raise RuntimeError(f"s3fs did not mount within {MOUNT_TIMEOUT} s")

    def unmount(self):
        if os.path.ismount(self.mnt):
            for cmd in (["fusermount", "-u", str(self.mnt)], ["umount", str(self.mnt)],
                        ["umount", "-l", str(self.mnt)]):
                if subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0:
                    break
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        S3fsMount.live.discard(self)


def _unmount_all():
    for m in list(S3fsMount.live):
        try:
            m.unmount()
        except Exception as e:   # noqa: BLE001 - best effort at exit
            log(f"unmount {m.mnt}: {e}")


atexit.register(_unmount_all)


def ensure_s3fs():
    """'' when s3fs and FUSE are usable, else why not (installs s3fs with apt-get as
    scripts/deps.sh installs its packages)."""
    if not shutil.which("s3fs"):
        as_root = [] if os.geteuid() == 0 else (["sudo"] if shutil.which("sudo") else None)
        if as_root is None:
            return "s3fs is not installed and there is no root or sudo to install it"
        log("installing s3fs with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(as_root + ["apt-get", "update", "-qq"], env=env, timeout=300)
        subprocess.run(as_root + ["apt-get", "install", "-y", "-qq", "s3fs"], env=env,
                       stdout=subprocess.DEVNULL, timeout=600)
        if not shutil.which("s3fs"):
            return "s3fs is not installed and apt-get install s3fs failed"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (no FUSE in this machine or container)"
    if not shutil.which("fusermount") and not shutil.which("fusermount3"):
        return "fusermount is missing"
    return ""


def s3fs_rows(server, work, reason):
    pw = work / "s3fs.passwd"
    pw.write_text(f"{server.access_key}:{server.secret_key}\n")
    pw.chmod(0o600)
    base = S3FS_DEFAULT_OPTS.format(url=server.endpoint, pw=pw)
    rows = []
    for name, opts in (("s3fs, default options", base),
                       ("s3fs, read-tuned options", f"{base},{S3FS_TUNED_EXTRA}")):
        tag = "tuned" if "tuned" in name else "default"
        m = S3fsMount(server, work / f"s3fs-{tag}", opts, work / f"s3fs-{tag}.log")
        row = read_row(name, m.mnt / PREFIX.rstrip("/"), child_env(),
                       prepare=m.mount, cleanup=m.unmount,
                       cold_means="fresh mount (empty stat cache)",
                       daemon_pid=lambda m=m: m.proc.pid if m.proc else None)
        row.command = f"{shlex.join(m.argv())}  # then: {row.command}; fusermount -u {m.mnt}"
        row.unavailable = reason
        rows.append(row)
    return rows


def local_rows(dataset_disk, dataset_shm):
    return [
        read_row("local disk", dataset_disk.root, child_env(), cold_means="dropped page cache"),
        read_row("tmpfs (/dev/shm)", dataset_shm.root, child_env(),
                 cold_means="nothing to drop: both passes are from memory"),
    ]


def build_s3get(work):
    exe = work / "s3get"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-o", str(exe), str(S3GET_SRC), "-lcurl"],
                   check=True, timeout=120)
    return exe


def ceiling_rows(server, exe, keys_file):
    rows = []
    for n in (4, 16):
        argv = [str(exe), server.endpoint, BUCKET, str(n), str(keys_file)]
        rows.append(Row(f"ceiling: s3get, {n} GETs in flight", shlex.join(argv), argv,
                        server.child_env(), cold_means="server page cache dropped"))
    return rows


# -- running ------------------------------------------------------------------------------


def measure(rows, runs, drop_ok, server_pid):
    """runs rounds; in each, every row does prepare, drop caches, cold pass, warm pass,
    cleanup. Rounds interleave the rows so drift hits them alike."""
    for r in range(runs):
        for row in rows:
            if row.unavailable:
                continue
            try:
                if row.prepare:
                    row.prepare()
                if drop_ok:
                    drop_caches()
                for kind in ("cold", "warm"):
                    p = timed(row.argv, row.env, server_pid=server_pid,
                              daemon_pid=row.daemon_pid)
                    row.passes[kind].append(p)
                    log(f"run {r + 1}/{runs} {row.name:38s} {kind}: {p.seconds:7.3f} s"
                        + ("" if p.ok else f"  FAILED {p.note}"))
            except Exception as e:   # noqa: BLE001 - recorded, the other rows go on
                row.passes["cold"].append(Pass(0.0, False, f"setup failed: {e}"))
                log(f"run {r + 1}/{runs} {row.name}: setup failed: {e}")
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


def check_cmd(root, tolerant):
    """sha256 of every file under root, read with the same find | xargs -P4 -n 50 shape."""
    if tolerant:
        return (f"find {root} -type f | xargs -P4 -n 50 sh -c 'sha256sum \"$@\"; s=$?; "
                "if [ $s -ge 128 ]; then echo \"rwbench: sha256sum died of signal "
                "$((s - 128))\" >&2; exit 0; fi; exit $s' sh")
    return f"find {root} -type f | xargs -P4 -n 50 sha256sum"


def hash_tree(root, env, tolerant=False, extra_env=None):
    """Returns ({relative path: hex}, exit status, stderr head, children killed)."""
    env = dict(env, **(extra_env or {}))
    p = subprocess.run(shell_argv(check_cmd(root, tolerant)), env=env, capture_output=True,
                       timeout=PASS_TIMEOUT)
    got = {}
    for line in p.stdout.decode(errors="replace").splitlines():
        digest, _, path = line.partition("  ")
        got[os.path.relpath(path, root)] = digest
    err = p.stderr.decode(errors="replace")
    return got, p.returncode, err.strip().splitlines()[:3], len(DIED_RE.findall(err))


def compare(dataset, got):
    want = {rel: digest for rel, _, digest in dataset.files}
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


def rwsplit_diagnostics(rows, dataset, work, drop_ok):
    """Per rwsplit row: an empty cache, then a cold and a warm sha256sum pass with
    RWSPLIT_LOG=info into a log file (the summary line is written at exit, after coreutils
    has closed stderr, so it needs RWSPLIT_LOG_FILE). Every file's digest is checked."""
    out = []
    for i, row in enumerate(rows):
        if not row.name.startswith("rwsplit"):
            continue
        row.prepare()
        if drop_ok:
            drop_caches()
        for kind in ("cold", "warm"):
            lf = work / f"diag-{i}-{kind}.log"
            got, rc, err, died = hash_tree(ROUTE, row.env, row.tolerant, extra_env={
                "RWSPLIT_LOG": "info", "RWSPLIT_LOG_FILE": lf})
            missing, extra, wrong = compare(dataset, got)
            totals, procs, problems = sum_summaries(lf)
            out.append(dict(row=row.name, kind=kind, rc=rc, err=err, missing=missing,
                            extra=extra, wrong=wrong, totals=totals, procs=procs,
                            problems=problems, died=died,
                            cmd=check_cmd(ROUTE, row.tolerant)))
            log(f"check {row.name} {kind}: status {rc}, {len(got)} files hashed, "
                f"{len(missing)} missing, {len(wrong)} wrong, {died} children killed; "
                f"summaries from {procs} processes")
    return out


def linked_libcurl():
    for line in run_text(["ldd", str(LIB)]).splitlines():
        if line.strip().startswith("libcurl") and "=>" in line:
            return line.split("=>")[1].split()[0]
    return None


def preload_overhead(env_plain, env_preload, n, runs=3):
    """Start-up cost of the preloaded library: n times `cat /dev/null` (a path no route
    covers) plain, with only libcurl preloaded, with rwsplit preloaded but RWSPLIT_DISABLE=1,
    and with rwsplit active. Returns [(label, median seconds)]. The loop runs in a plain
    bash; only the cat processes get LD_PRELOAD."""
    variants = [("plain", env_plain)]
    curl = linked_libcurl()
    if curl:
        variants.append((f"LD_PRELOAD={curl} only", dict(env_plain, LD_PRELOAD=curl)))
    variants.append(("rwsplit preloaded, RWSPLIT_DISABLE=1",
                     dict(env_preload, RWSPLIT_DISABLE="1")))
    variants.append(("rwsplit preloaded and active (prefetch = listing config)", env_preload))
    res = []
    for label, env in variants:
        pre = " ".join(f"{k}={shlex.quote(env[k])}" for k in
                       ("LD_PRELOAD", "RWSPLIT_CONFIG", "RWSPLIT_DISABLE") if k in env)
        loop = f"for i in $(seq {n}); do env {pre + ' ' if pre else ''}cat /dev/null; done"
        cmd = shell_argv(loop)
        res.append((label, statistics.median(timed(cmd, env_plain).seconds
                                             for _ in range(runs))))
    return res


def s3fs_check(rows, dataset, sample=50):
    """sha256 of a sample of files through a fresh default s3fs mount."""
    row = next((r for r in rows if r.name.startswith("s3fs") and not r.unavailable), None)
    if row is None:
        return None
    rng = random.Random(1)
    picks = rng.sample(dataset.files, min(sample, len(dataset.files)))
    root = row.root
    bad = []
    try:
        row.prepare()
        for rel, _, digest in picks:
            with open(root / rel, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != digest:
                    bad.append(rel)
    except OSError as e:
        bad.append(f"error: {e}")
    finally:
        row.cleanup()
    return len(picks), bad


# -- report -------------------------------------------------------------------------------


def stats(passes):
    ok = [p.seconds for p in passes if p.ok]
    if not ok:
        return None
    return statistics.median(ok), min(ok), max(ok), len(ok)


def fmt_row(name, kind, passes, nfiles, nbytes):
    s = stats(passes)
    nfail = sum(1 for p in passes if not p.ok)
    if s is None:
        return f"| {name} | {kind} | failed | | | | | 0/{len(passes)} |"
    med, lo, hi, n = s
    return (f"| {name} | {kind} | {med:.3f} | {lo:.3f} | {hi:.3f} | {nbytes / 1e6 / med:.0f} | "
            f"{nfiles / med:.0f} | {n}/{n + nfail} |")


def median_of(rows, name, kind):
    row = next((r for r in rows if r.name == name), None)
    s = stats(row.passes[kind]) if row and not row.unavailable else None
    return s[0] if s else None


def ratio_line(label, target, num, den, explain):
    """Throughput ratio = den_time / num_time (num is the thing being judged)."""
    if num is None or den is None:
        return f"| {label} | {target} | n/a (a side failed or was unavailable) | {explain} |"
    r = den / num
    verdict = ""
    if target:
        need = float(target.strip("≥× "))
        verdict = " (meets)" if r >= need else " (**misses**)"
    return f"| {label} | {target} | {r:.2f}×{verdict} | {explain} |"


def write_report(out, args, facts, dataset, rows, diags, s3fs_ok, overhead, cmdline,
                 total_seconds):
    n, nbytes = len(dataset.files), dataset.total_bytes
    L = []
    L.append("# rwsplit benchmark: small files (issue 3)\n")
    L.append(f"Generated by `{cmdline}` (run by `make bench`) in {total_seconds:.0f} s. "
             "Do not edit by hand: run it again.\n")
    L.append(f"Data set: {n} files of random bytes, {SIZE_MIN // 1000}–{SIZE_MAX // 1000} KB "
             f"(uniform; mean {nbytes / n / 1e3:.1f} KB, total {nbytes / 1e6:.1f} MB) in {NDIRS} "
             f"directories, seed {args.seed}, in one bucket of a MinIO on 127.0.0.1 started by "
             "the script. Read with:\n")
    L.append(f"    {READ_CMD.format(root='ROOT')}\n")
    L.append(f"Each measurement ran {args.runs} times (rounds interleave the rows); the table "
             "gives the median and min/max wall-clock seconds of the successful passes, and "
             "MB/s (10^6 bytes) and files/s at the median. *cold*: the state named in the "
             "last column, and the page cache dropped; *warm*: the same command right "
             "after.\n")
    L.append("## Machine\n")
    L.append("| | |\n|---|---|")
    L += [f"| {k} | {v} |" for k, v in facts]
    L.append("")
    L.append("## Results\n")
    L.append("| read path | pass | median s | min s | max s | MB/s | files/s | ok runs |")
    L.append("|---|---|---|---|---|---|---|---|")
    for row in rows:
        if row.unavailable:
            L.append(f"| {row.name} | — | unavailable: {row.unavailable} | | | | | |")
            continue
        for kind in ("cold", "warm"):
            L.append(fmt_row(row.name, kind, row.passes[kind], n, nbytes))
    L.append("")
    L.append("CPU seconds per pass (median over the successful passes): *client* is the "
             "timed command's whole process tree (bash, find, xargs, every cat; for s3get the "
             "client itself) plus, for s3fs, the s3fs daemon; *server* is MinIO. The machine "
             f"has {os.cpu_count()} CPUs, so client + server CPU above "
             f"{os.cpu_count()} × wall time cannot happen and near it means CPU-bound. "
             "*other* is the rest of the machine's busy CPU time during the pass (kernel "
             "threads doing our I/O, and anything else running on the machine: a large value "
             "means the pass shared the CPUs); *steal* is time the hypervisor took.\n")
    L.append("| read path | pass | wall s | client CPU s | server CPU s | other CPU s | steal s |")
    L.append("|---|---|---|---|---|---|---|")
    for row in rows:
        for kind in ("cold", "warm"):
            ok = [p for p in row.passes[kind] if p.ok]
            if row.unavailable or not ok:
                continue
            L.append(f"| {row.name} | {kind} | {statistics.median(p.seconds for p in ok):.3f} | "
                     f"{statistics.median(p.client_cpu for p in ok):.2f} | "
                     f"{statistics.median(p.server_cpu for p in ok):.2f} | "
                     f"{statistics.median(p.other_cpu for p in ok):.2f} | "
                     f"{statistics.median(p.steal for p in ok):.2f} |")
    L.append("")
    L.append("What *cold* means per row: " + "; ".join(
        f"{r.name}: {r.cold_means}" for r in rows if r.cold_means) + ".\n")

    ceil_cold = [m for m in (median_of(rows, r.name, "cold") for r in rows
                             if r.name.startswith("ceiling")) if m is not None]
    ceil_warm = [m for m in (median_of(rows, r.name, "warm") for r in rows
                             if r.name.startswith("ceiling")) if m is not None]
    rw_cold = median_of(rows, "rwsplit, prefetch = listing", "cold")
    rw_warm = median_of(rows, "rwsplit, prefetch = listing", "warm")
    rw_off_cold = median_of(rows, "rwsplit, prefetch = off", "cold")
    rw_tol_cold = median_of(rows, "rwsplit, prefetch = listing, crash-tolerant xargs", "cold")
    rw_tol_warm = median_of(rows, "rwsplit, prefetch = listing, crash-tolerant xargs", "warm")
    L.append("## Ratios against DESIGN.md's targets\n")
    L.append("Throughput ratios (the other side's median time / rwsplit's median time; "
             "higher is better for rwsplit). rwsplit = `prefetch = listing` unless said.\n")
    L.append("| ratio | target | measured | sides |\n|---|---|---|---|")
    L.append(ratio_line("rwsplit cold vs server ceiling (cold server)", "≥ 0.8×", rw_cold,
                        min(ceil_cold) if ceil_cold else None,
                        "faster of s3get 4/16 in flight, page cache dropped as for rwsplit"))
    L.append(ratio_line("rwsplit cold vs server ceiling (warm server)", "", rw_cold,
                        min(ceil_warm) if ceil_warm else None,
                        "faster of s3get 4/16, second pass: MinIO's files in page cache"))
    L.append(ratio_line("rwsplit cold (prefetch = off) vs ceiling (cold server)", "",
                        rw_off_cold, min(ceil_cold) if ceil_cold else None, ""))
    tol = any(r.tolerant for r in rows)
    if tol:
        L.append(ratio_line("rwsplit cold (listing, crash-tolerant xargs) vs ceiling (cold "
                            "server)", "", rw_tol_cold, min(ceil_cold) if ceil_cold else None,
                            "diagnostic: one extra sh per 50 files, crashed children "
                            "tolerated"))
    for s3 in ("s3fs, default options", "s3fs, read-tuned options"):
        L.append(ratio_line(f"rwsplit cold vs {s3} cold", "≥ 3×", rw_cold,
                            median_of(rows, s3, "cold"), "fresh mount, page cache dropped"))
    for s3 in ("s3fs, default options", "s3fs, read-tuned options") if tol else ():
        L.append(ratio_line(f"rwsplit cold (listing, crash-tolerant) vs {s3} cold", "",
                            rw_tol_cold, median_of(rows, s3, "cold"), "diagnostic"))
    L.append(ratio_line("rwsplit warm vs local disk warm (page cache)", "≥ 0.5×", rw_warm,
                        median_of(rows, "local disk", "warm"), ""))
    L.append(ratio_line("rwsplit warm (prefetch = off) vs local disk warm", "",
                        median_of(rows, "rwsplit, prefetch = off", "warm"),
                        median_of(rows, "local disk", "warm"), ""))
    if tol:
        L.append(ratio_line("rwsplit warm (listing, crash-tolerant) vs local disk warm", "",
                            rw_tol_warm, median_of(rows, "local disk", "warm"), "diagnostic"))
    L.append(ratio_line("rwsplit warm vs tmpfs", "", rw_warm,
                        median_of(rows, "tmpfs (/dev/shm)", "warm"), ""))
    L.append("")

    L.append("## Correctness checks (untimed, after the timed runs)\n")
    for d in diags:
        content_ok = not (d["missing"] or d["extra"] or d["wrong"]) and d["rc"] == 0
        state = ("OK" if not d["died"] else "content OK, but **children crashed**") \
            if content_ok else "**FAILED**"
        L.append(f"- {d['row']}, {d['kind']} (`{d['cmd']}`, every digest compared with the "
                 f"local copy): {state}: exit status {d['rc']}, {len(d['missing'])} missing, "
                 f"{len(d['wrong'])} with wrong content, {len(d['extra'])} unexpected, "
                 f"{d['died']} children killed by a signal"
                 + (f"; e.g. missing {d['missing'][:3]}" if d["missing"] else "")
                 + (f"; e.g. wrong {d['wrong'][:3]}" if d["wrong"] else "")
                 + (f"; stderr: `{' | '.join(d['err'])}`" if d["err"] else ""))
    if s3fs_ok is not None:
        checked, bad = s3fs_ok
        L.append(f"- s3fs, default options: sha256 of {checked} random files through a fresh "
                 f"mount: {'OK' if not bad else '**FAILED** ' + str(bad[:3])}")
    L.append("")
    L.append("## rwsplit summary lines (RWSPLIT_LOG=info, summed over all processes)\n")
    L.append("From the checking passes above (sha256sum instead of cat, same find | xargs "
             "shape), with `RWSPLIT_LOG=info RWSPLIT_LOG_FILE=...`: each preloaded process "
             "(bash, find, xargs, every sha256sum) writes one `read summary` line at exit.\n")
    L.append("| row | pass | processes with a summary | " +
             " | ".join(SUMMARY_FIELDS) + " |")
    L.append("|---|---|---|" + "---|" * len(SUMMARY_FIELDS))
    for d in diags:
        t = d["totals"] or {}
        L.append(f"| {d['row']} | {d['kind']} | {d['procs']} | " +
                 " | ".join(str(t.get(f, "?")) for f in SUMMARY_FIELDS) + " |")
    probs = [(d["row"], d["kind"], p) for d in diags for p in d["problems"]]
    if probs:
        L.append("\nWarnings and errors in those logs (first few):\n")
        L += [f"- {r} {k}: `{p}`" for r, k, p in probs[:10]]
    L.append("")

    L.append("## Start-up cost of the preloaded library\n")
    L.append(f"`bash -c 'for i in $(seq {OVERHEAD_N}); do env VARS cat /dev/null; done'` (no "
             "routed path touched; `env` runs in every variant), median of 3 runs. The timed "
             f"command starts about {len(dataset.files) // 50 + 3} preloaded processes (bash, "
             "find, xargs and one cat per 50 files).\n")
    L.append("| variant | seconds | ms per process | ms more than plain |\n|---|---|---|---|")
    base = overhead[0][1]
    for label, sec in overhead:
        L.append(f"| {label} | {sec:.3f} | {sec / OVERHEAD_N * 1000:.2f} | "
                 f"{(sec - base) / OVERHEAD_N * 1000:.2f} |")
    L.append("")

    failures = [(row.name, kind, i + 1, p.note) for row in rows for kind in ("cold", "warm")
                for i, p in enumerate(row.passes[kind]) if not p.ok]
    crashes = [(row.name, kind, i + 1, p.note) for row in rows for kind in ("cold", "warm")
               for i, p in enumerate(row.passes[kind]) if p.ok and p.died]
    L.append("## Failed passes\n")
    if failures:
        L.append("A failed pass is left out of the statistics above.\n")
        L += [f"- {name}, {kind}, run {i}: {note}" for name, kind, i, note in failures]
    else:
        L.append("None.")
    if crashes:
        L.append("\nCrash-tolerant passes that completed although children were killed (they "
                 "count in the statistics, as the children died after writing their output; "
                 "the correctness check above shows whether the content was right):\n")
        L += [f"- {name}, {kind}, run {i}: {note}" for name, kind, i, note in crashes]
    L.append("")
    L.append("## Exact commands\n")
    L.append("Each was run as `bash -c` (or directly, for s3get) from the repository root; "
             "paths are this run's temp dirs.\n")
    for row in rows:
        L.append(f"- **{row.name}**: `{row.command}`")
    L.append("")
    L.append("## Every pass (seconds; x = failed)\n")
    L.append("| read path | cold | warm |\n|---|---|---|")
    for row in rows:
        if row.unavailable:
            continue
        cells = [", ".join(f"{p.seconds:.3f}" + ("" if p.ok else "x") for p in row.passes[k])
                 for k in ("cold", "warm")]
        L.append(f"| {row.name} | {cells[0]} | {cells[1]} |")
    L.append("")
    # Only this script's section of the file: the other benchmarks write theirs.
    replace_section(out, "small-files", "\n".join(L))


# -- main ---------------------------------------------------------------------------------


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=4000, help="number of files (default 4000)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--seed", type=int, default=20240603)
    ap.add_argument("--no-s3fs", action="store_true", help="skip the s3fs rows")
    ap.add_argument("--crash-tolerant", action="store_true",
                    help="add a diagnostic rwsplit row whose xargs survives crashing children")
    a = ap.parse_args(argv)
    if not 1 <= a.files <= 100_000 or not 1 <= a.runs <= 20:
        ap.error("--files must be 1..100000 and --runs 1..20")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    py = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) \
        else "python3"
    cmdline = f"{py} bench/small_files.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _raise_exit)
    started = time.monotonic()
    log("building rwsplit (make)")
    subprocess.run(["make", "-s", "-C", str(REPO), "all"], check=True, timeout=600)
    if os.path.exists(ROUTE):
        log(f"warning: {ROUTE} exists on disk; rwsplit serves the route regardless")

    work = Path(tempfile.mkdtemp(prefix="rwbench-", dir="/var/tmp"))   # root filesystem
    shm = Path(tempfile.mkdtemp(prefix="rwbench-", dir="/dev/shm"))
    server = None
    try:
        drop_ok = drop_caches()
        log(f"drop_caches {'works' if drop_ok else 'does not work'}")
        s3fs_reason = "--no-s3fs" if args.no_s3fs else ensure_s3fs()
        log(f"generating {args.files} files")
        disk = make_dataset(work / "local" / "data", args.files, args.seed)
        shutil.copytree(disk.root, shm / "local" / "data")
        tmpfs = Dataset(shm / "local" / "data", disk.files)
        keys = work / "keys.txt"
        keys.write_text("".join(f"{PREFIX}{rel} {size}\n" for rel, size, _ in disk.files))
        s3get = build_s3get(work)

        server = MinioServer().start()
        with Mc(server) as mc:
            log(f"uploading to {server.endpoint} with {MC_BIN.name} cp --recursive")
            upload(mc, server, disk)
        rows = (ceiling_rows(server, s3get, keys) +
                rwsplit_rows(server, work, shm, disk.total_bytes, args.crash_tolerant) +
                s3fs_rows(server, work, s3fs_reason) + local_rows(disk, tmpfs))
        facts = machine_facts(drop_ok, work / "local", shm / "local")
        measure(rows, args.runs, drop_ok, server.pid)
        log("checking contents")
        diags = rwsplit_diagnostics(rows, disk, work, drop_ok)
        s3fs_ok = s3fs_check(rows, disk)
        listing = next(r for r in rows if r.name == "rwsplit, prefetch = listing")
        overhead = preload_overhead(child_env(), {k: str(v) for k, v in listing.env.items()},
                                    OVERHEAD_N)
        facts.append(("load average at end", Path("/proc/loadavg").read_text().strip()))
        write_report(args.out, args, facts, disk, rows, diags, s3fs_ok, overhead, cmdline,
                     time.monotonic() - started)
        log(f"wrote {args.out}")
        return 0
    finally:
        _unmount_all()
        if server is not None:
            server.stop()
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
