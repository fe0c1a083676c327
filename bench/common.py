"""What every benchmark script shares: logging, machine facts, page-cache dropping, timing a
command with its CPU and peak RSS, statistics, the FUSE mounts we compare against (s3fs-fuse,
rclone mount), the rwsplit environment, and the JSON each script leaves for bench/chart.py.

Every server and mount is started and stopped by the calling script on 127.0.0.1; every wait
is bounded. Nothing here times anything by itself.
"""

import atexit
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.harness.minio import MC_BIN, MINIO_BIN, child_env  # noqa: E402,F401

VENV_PY = REPO / ".tools" / "venv" / "bin" / "python"
# One NAME.json per script, for bench/chart.py; RWBENCH_RESULTS_JSON redirects trial runs.
RESULTS_JSON = Path(os.environ.get("RWBENCH_RESULTS_JSON", REPO / "bench" / "results"))
PASS_TIMEOUT = 300                                # seconds; a longer pass counts as failed
MOUNT_TIMEOUT = 30
GNU_TIME = shutil.which("time", path="/usr/bin") or ""   # Debian package `time`


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_text(cmd, **kw):
    """Output of a short command, or a note saying why there is none."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable ({e})"


def first_line(cmd):
    out = run_text(cmd)
    return out.splitlines()[0] if out else "?"


def command_line(script, argv):
    """How the report shows the script's own invocation: the interpreter relative to the
    repository when it is the venv's, then bench/SCRIPT and its arguments."""
    py = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) \
        else "python3"
    return f"{py} bench/{script} " + shlex.join(argv)


def build_tool(work, name, libs=()):
    """Compiles bench/NAME.c (a small C client the scripts run) into work/NAME with gcc -O2
    and warnings on; returns the executable's path. Raises CalledProcessError if it fails."""
    exe = Path(work) / name
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-o", str(exe),
                    str(REPO / "bench" / f"{name}.c"), *libs], check=True, timeout=120)
    return exe


def release(server, mc, *dirs):
    """A script's teardown: every live FUSE mount unmounted (before MinIO goes, the daemons
    talk to it; before the directories go, rmtree must not walk into a live mount), mc's
    config closed, MinIO stopped, then dirs removed. server and mc may be None."""
    unmount_all()
    if mc is not None:
        mc.close()
    if server is not None:
        server.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def upload_tree(mc, server, root, bucket, prefix, count, size, timeout):
    """mc cp --recursive of root into s3://bucket/prefix (made first), then checks the listing
    holds count objects of size bytes in all; raises RuntimeError if not."""
    mc.mb(bucket)
    mc.run("cp", "--recursive", "--quiet", f"{root}/", mc.target(f"{bucket}/{prefix}"),
           timeout=timeout)
    s3 = server.boto3_client()
    got = got_size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            got += 1
            got_size += obj["Size"]
    if got != count or got_size != size:
        raise RuntimeError(f"upload incomplete: {got} objects / {got_size} bytes in the bucket, "
                           f"expected {count} / {size}")


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


def lib_fact(lib):
    """'git abc1234; <lib> sha256 …, built …' naming exactly which library was measured."""
    lib = Path(lib)
    head = run_text(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = run_text(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    if not lib.exists():
        return f"git {head}; {lib} missing"
    digest = hashlib.sha256(lib.read_bytes()).hexdigest()[:16]
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lib.stat().st_mtime))
    return (f"git {head}" + (" + uncommitted changes to tracked files" if dirty else "")
            + f"; {lib} sha256 {digest}…, built {built}")


def tool_facts():
    """Versions of the servers and of every alternative we compare against."""
    stamp = MINIO_BIN.parent / ".minio.version"
    minio = first_line([str(MINIO_BIN), "--version"])
    if stamp.exists():
        minio += f" (built from {stamp.read_text().strip()})"
    rows = [("MinIO", minio), ("mc", first_line([str(MC_BIN), "--version"]))]
    for name, argv in (("s3fs", ["s3fs", "--version"]), ("rclone", ["rclone", "version"]),
                       ("fio", ["fio", "--version"]), ("GNU parallel", ["parallel", "--version"]),
                       ("curl", ["curl", "--version"])):
        rows.append((name, first_line(argv) if shutil.which(argv[0]) else "not installed"))
    try:
        import boto3  # noqa: PLC0415 - only for its version
        rows.append(("boto3", boto3.__version__))
    except ImportError:
        rows.append(("boto3", "not installed"))
    return rows


def load_average():
    return Path("/proc/loadavg").read_text().strip()


# -- timing -------------------------------------------------------------------------------


@dataclass
class Pass:
    """One timed run of one command."""
    seconds: float
    ok: bool
    note: str = ""
    client_cpu: float = 0.0        # CPU of the command's process tree (+ a daemon's, agents')
    server_cpu: float = 0.0        # CPU seconds of MinIO during the pass
    other_cpu: float = 0.0         # the rest of the machine's busy CPU (kernel threads, others)
    steal: float = 0.0             # CPU seconds the hypervisor gave to someone else
    max_rss_kib: int = 0           # peak RSS of the largest process of the command's tree
    #                                (GNU time's %M; 0 when /usr/bin/time is missing)
    stdout: str = ""
    agent_rss_kib: int = 0         # rwsplit fetch agents' peak RSS during the pass (summed)


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """User + system CPU seconds of a live process (0 when it is gone or pid is None)."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def agent_cpus():
    """{pid: CPU seconds} of every running rwsplit fetch agent (`rwsplit agent`): preloaded
    processes start it and it outlives them, outside the timed command's process tree, so
    timed() adds what it used during a pass to the client's CPU."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"/rwsplit") and argv[1] == b"agent":
            found[int(d.name)] = cpu_of(int(d.name))
    return found


def machine_cpu():
    """(busy, steal) CPU seconds of the whole machine so far, all CPUs summed."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    return busy / _TICK, (v[7] if len(v) > 7 else 0) / _TICK


def timed(argv, env, timeout=PASS_TIMEOUT, server_pid=None, daemon_pid=None, cwd=None,
          keep_stdout=False):
    """Runs argv once (its own session, stdin /dev/null), wall-clock timed. A non-zero status
    or a timeout (the whole process group is killed) is a failed pass. Also records the CPU
    of the command's process tree (wait4 rusage; plus daemon_pid's, e.g. a FUSE daemon, which
    may be a callable, and rwsplit fetch agents' during the pass), MinIO's (server_pid), the rest of the machine's, and the peak RSS of
    the largest process in the tree, and the fetch agents' (agent_rss_kib). stdout is kept
    (decoded) only with keep_stdout."""
    daemon_pid = daemon_pid() if callable(daemon_pid) else daemon_pid
    # wait4's ru_maxrss would include this Python process's own RSS (the forked child keeps
    # it as its high-water mark through exec), so GNU time, a small C parent, measures it.
    rss_path = Path(f"/tmp/rwbench-rss-{os.getpid()}-{threading.get_ident()}")
    if GNU_TIME:
        argv = [GNU_TIME, "-q", "-f", "%M", "-o", str(rss_path), *argv]
    s0, d0, a0 = cpu_of(server_pid), cpu_of(daemon_pid), agent_cpus()
    for pid in a0:
        vm_hwm_kib(pid, reset=True)   # an agent outlives passes: measure this one's peak
    m0, st0 = machine_cpu()
    out_path = Path(f"/tmp/rwbench-out-{os.getpid()}-{threading.get_ident()}")
    with open(out_path, "w+b") as out, open(f"{out_path}.err", "w+b") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                             stdout=out if keep_stdout else subprocess.DEVNULL, stderr=err,
                             start_new_session=True)
        expired = []

        def kill():
            expired.append(1)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        except BaseException:
            kill()   # interrupted (SIGTERM, ^C): the command must not outlive the benchmark
            os.wait4(p.pid, 0)
            raise
        finally:
            timer.cancel()
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        m1, st1 = machine_cpu()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace") if keep_stdout else ""
        lines = err.read().decode(errors="replace").strip().splitlines()
    out_path.unlink(missing_ok=True)
    Path(f"{out_path}.err").unlink(missing_ok=True)
    agents = agent_cpus()
    client = ru.ru_utime + ru.ru_stime + (cpu_of(daemon_pid) - d0 if daemon_pid else 0.0) + \
        sum(cpu - a0.get(pid, 0.0) for pid, cpu in agents.items())
    agent_rss = sum(vm_hwm_kib(pid) for pid in agents)
    server = cpu_of(server_pid) - s0 if server_pid else 0.0
    others = max(0.0, (m1 - m0) - client - server)
    max_rss = 0
    try:
        max_rss = int(rss_path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    rss_path.unlink(missing_ok=True)
    res = Pass(dt, True, lines[0] if lines else "", client, server, others, st1 - st0,
               max_rss, stdout, agent_rss)
    if expired:
        res.ok, res.note = False, f"timed out after {timeout} s"
    elif p.returncode != 0:
        res.ok = False
        res.note = f"exit status {p.returncode}" + (f": {' | '.join(lines[:3])}" if lines else "")
    return res


def vm_hwm_kib(pid, reset=False):
    """Peak RSS (VmHWM) of a live process so far, in KiB; 0 when unknown. reset: start a new
    peak from its current RSS (for a long-lived daemon measured pass by pass)."""
    if not pid:
        return 0
    try:
        hwm = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
        if reset:
            Path(f"/proc/{pid}/clear_refs").write_text("5\n")
        return hwm
    except (OSError, ValueError):
        return 0


def stats(values):
    """(median, min, max) of a non-empty list, else (None, None, None)."""
    if not values:
        return None, None, None
    return statistics.median(values), min(values), max(values)


def ok_seconds(passes):
    return [p.seconds for p in passes if p.ok]


def fmt(x, digits=3):
    return "–" if x is None else f"{x:.{digits}f}"


def ratio(num, den):
    """num / den as '1.23×', or '–' when either is missing."""
    return "–" if not num or not den else f"{num / den:.2f}×"


def env_line(extra):
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in extra.items())


# -- results for the chart ------------------------------------------------------------------


def save_json(name, data, trial=False):
    """Writes bench/results/NAME.json for bench/chart.py (overwriting the previous run's);
    with trial (a --quick run) writes nothing, leaving the chart's data alone.
    data: {"title": str, "unit": "MB/s" | "files/s" | "s" | ..., "lower_is_better": bool,
    "groups": [{"label": "cold", "values": {system name: median, ...}}, ...],
    "log_scale": bool (optional), any other keys the script wants to keep}. One chart panel per file: a bar per system in
    every group. Dataclasses and Paths in data are converted."""
    if trial:
        log(f"trial run: {RESULTS_JSON / name}.json left as it was")
        return
    RESULTS_JSON.mkdir(parents=True, exist_ok=True)

    def conv(o):
        if hasattr(o, "__dataclass_fields__"):
            return asdict(o)
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON-able: {type(o)}")
    (RESULTS_JSON / f"{name}.json").write_text(json.dumps(data, indent=1, default=conv) + "\n")


# -- the systems we compare against ---------------------------------------------------------


class FuseMount:
    """A FUSE file system daemon in the foreground as our child (its own session). mount()
    waits until the mount point is mounted; unmount() always runs fusermount -u (then umount,
    umount -l) and reaps the daemon. Every live mount is unmounted at exit."""

    live = set()

    def __init__(self, name, argv, mnt, log_path, env=None):
        self.name, self.argv, self.mnt, self.log_path = name, argv, Path(mnt), log_path
        self.env = env if env is not None else child_env()
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def mount(self):
        self.mnt.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, start_new_session=True)
        FuseMount.live.add(self)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.unmount()
                raise RuntimeError(f"{self.name} exited with {rc}; see {self.log_path}")
            if os.path.ismount(self.mnt):
                return
            time.sleep(0.05)
        self.unmount()
        raise RuntimeError(f"{self.name} did not mount within {MOUNT_TIMEOUT} s")

    def unmount(self):
        if os.path.ismount(self.mnt):
            for cmd in (["fusermount", "-u", str(self.mnt)], ["umount", str(self.mnt)],
                        ["umount", "-l", str(self.mnt)]):
                if subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0:
                    break
        if self.proc is not None:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        FuseMount.live.discard(self)

    def shown(self):
        return shlex.join(str(a) for a in self.argv)


def unmount_all():
    """Unmounts every live FUSE mount (also registered to run at exit)."""
    for m in list(FuseMount.live):
        try:
            m.unmount()
        except Exception as e:   # noqa: BLE001 - best effort at exit
            log(f"unmount {m.mnt}: {e}")


atexit.register(unmount_all)


S3FS_TUNED = "kernel_cache,max_stat_cache_size=100000,parallel_count=20"


def s3fs_mount(server, bucket, mnt, work, tuned=False, extra=""):
    """s3fs-fuse on bucket at mnt: default options, or the read-tuned ones (kernel_cache,
    max_stat_cache_size, parallel_count as ossfs's guide suggests). extra: more -o options."""
    pw = Path(work) / "s3fs.passwd"
    pw.write_text(f"{server.access_key}:{server.secret_key}\n")
    pw.chmod(0o600)
    opts = f"url={server.endpoint},use_path_request_style,passwd_file={pw}"
    if tuned:
        opts += "," + S3FS_TUNED
    if extra:
        opts += "," + extra
    tag = "s3fs-tuned" if tuned else "s3fs"
    return FuseMount(tag, ["s3fs", bucket, str(mnt), "-f", "-o", opts], mnt,
                     Path(work) / f"{tag}-{Path(mnt).name}.log")


def rclone_mount(server, bucket, mnt, work, cache_dir, extra=()):
    """rclone mount of bucket at mnt with --vfs-cache-mode full and its cache in cache_dir;
    the remote is given by RCLONE_CONFIG_* variables (no config file)."""
    env = child_env({
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "Minio",
        "RCLONE_CONFIG_BENCH_ENDPOINT": server.endpoint,
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": server.access_key,
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": server.secret_key,
        "RCLONE_CONFIG_BENCH_REGION": "us-east-1",
        # rclone's S3 backend fails with "LoadCustomCABundleError" when this is set, even
        # for plain http: the server is on loopback without TLS.
        "AWS_CA_BUNDLE": None,
    })
    argv = ["rclone", "mount", f"bench:{bucket}", str(mnt), "--vfs-cache-mode", "full",
            "--cache-dir", str(cache_dir), "--config", "/dev/null", *extra]
    return FuseMount("rclone", argv, mnt, Path(work) / f"rclone-{Path(mnt).name}.log", env=env)


def fuse_reason():
    """'' when FUSE mounts can work here, else why not."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (no FUSE in this machine or container)"
    if not shutil.which("fusermount") and not shutil.which("fusermount3"):
        return "fusermount is missing"
    if os.geteuid() != 0:
        return "not root: FUSE mounts for other processes need root here"
    return ""


def tool_reason(name):
    """'' when the FUSE tool `name` (s3fs, rclone) can be used, else why not
    (scripts/bench-deps.sh installs them)."""
    if not shutil.which(name):
        return f"{name} is not installed (scripts/bench-deps.sh installs it)"
    return fuse_reason()


def empty_dir(path):
    """path made an empty directory (an rwsplit cache_dir emptied: its fetch agent exits with
    its socket file)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def set_store_latency(toxi, ms, streams=("downstream",)):
    """Toxiproxy toxi with only a latency toxic of ms on each of streams (none when ms is 0):
    on the downstream, every response's bytes leave the proxy ms after they arrive."""
    for t in toxi.toxics():
        toxi.remove(t["name"])
    for stream in streams if ms else ():
        toxi.add(f"latency_{stream}", "latency", stream=stream, latency=ms, jitter=0)


def read_route_config(server, path, cache_dir, route, url, cache, endpoint=None):
    """Writes an rwsplit config with one read route (listing prefetch, `cache` budget as
    rwsplit writes sizes, e.g. "625MiB") and cache_dir to path; returns path."""
    path.write_text(f"[global]\ncache_dir = {cache_dir}\n\n" + server.config_text(
        routes=[("read", route, url, {"prefetch": "listing", "cache": cache})],
        endpoint=endpoint))
    return path


def hashed_files(root, names, label=None):
    """A torch Dataset of the files root/names[i]: item i is (label(i), sha256 hex of the
    file's bytes), label defaulting to i. Built on first use: torch is imported here."""
    from torch.utils.data import Dataset
    label = label or (lambda i: i)

    class HashedFiles(Dataset):
        def __len__(self):
            return len(names)

        def __getitem__(self, i):
            with open(os.path.join(root, names[i]), "rb") as f:
                return label(i), hashlib.sha256(f.read()).hexdigest()
    return HashedFiles()


def key_sizes(s3, bucket, prefix):
    """{key less prefix: size} of every object under prefix (boto3 client s3)."""
    got = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            got[o["Key"][len(prefix):]] = o["Size"]
    return got


def shown_command(env_shown, argv):
    """argv as a shell line, after the variables of env_shown (as `rwsplit_env` returns)."""
    prefix = env_line(env_shown) + " " if env_shown else ""
    return prefix + shlex.join(str(a) for a in argv)


def rwsplit_env(server, lib, conf, extra=None):
    """The environment of a program run under rwsplit with config conf."""
    shown = {"LD_PRELOAD": str(lib), "RWSPLIT_CONFIG": str(conf), **(extra or {})}
    return server.child_env(shown), shown
