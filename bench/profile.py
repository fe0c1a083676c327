#!/usr/bin/env python3
"""Where the time goes when rwsplit misses a target: a `perf` profile of
the cold `find | xargs -P4 -n 50 cat` pipeline, and the per-process costs behind it.

    .tools/venv/bin/python bench/profile.py [--files 2000] [--out bench/RESULTS.md] [--build build]

A MinIO on 127.0.0.1 started by the script gets --files objects of 80-140 KB in 4 prefixes
(as small_files.py's data set). Then, untimed by any table but recorded:

1. `perf record -F 999 -g` of the cold pipeline under rwsplit (empty cache, prefetch =
   listing): the share of samples per DSO and the top symbols, over the whole process tree.
2. `perf stat -r 30 -e task-clock` of one process doing nothing (`cat /dev/null`) plain, with
   librwsplit.so preloaded, with libcurl preloaded and with librwsplit-s3.so (the store client
   and its ~40 shared libraries) preloaded: what loading the client costs every process that
   has to fetch.
3. The same pipeline with 5, 50 and 500 files per `cat` (`xargs -n`), cold, client CPU: the
   per-process share of the cost.
4. One process, 32 threads (bench/mtread.c, many_files.py's reader) over the same objects,
   cold: client and MinIO CPU per file next to the ceiling client's (bench/s3get.c, 32 GETs
   in flight), and `perf record -g` of the reader, inclusive (children) view: where the
   client's extra CPU per file goes when no process starts.
5. `perf record -a -g` (every CPU) of a cold 1 GiB `dd bs=1M` through rwsplit and of the
   ceiling client reading the same object with 16 ranged GETs in flight, MinIO's page cache
   dropped before each: the share of the machine's samples per thread name (rwsplit's
   threads are rws-*, MinIO's minio, an idle CPU swapper).
6. The same of a 200-file checkpoint save (1-8 MiB each, bench/checkpoint_child.py) through
   a write route and to local disk, the report limited to the save's own time window: what
   runs beside the training loop's writes while it saves.
7. Memory: /proc/PID/smaps of mtread with 128 threads reading the small objects through
   rwsplit (cold) and from local disk, sampled every 50 ms; the resident memory at the peak
   by kind of mapping, and the fetch agent's the same way.

Writes section `profile` of --out. Needs perf (apt-get install linux-perf); root for
drop_caches is not needed (the cache being cold is what matters here).
"""

import argparse
import collections
import json
import os
import random
import shutil
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.results_md import replace_section  # noqa: E402
from tests.harness.minio import Mc, MinioServer  # noqa: E402

ROUTE = "/mnt/rwbench-prof/data"
BIG_ROUTE = "/mnt/rwbench-prof/big"         # the 1 GiB object, prefetch off
CKPT_ROUTE = "/mnt/rwbench-prof/ckpt"       # a write route for the checkpoint save
BUCKET = "rwbench-prof"
MiB = 1 << 20
BIG_BYTES = 1 << 30
CKPT_FILES = 200
PIPELINE = "find {root} -type f | xargs -P4 -n {n} cat > /dev/null"
MT_THREADS = 32
MEM_THREADS = 128
SMAPS_HEAD = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def make_data(root, nfiles, seed=7):
    rng = random.Random(seed)
    for i in range(nfiles):
        p = root / f"d{i % 4}" / f"f{i // 4:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.randint(80_000, 140_000)))


def perf_report(data, limit, sort, *extra, children=False):
    """perf report of data, sorted by sort, entries above limit percent, call graphs off;
    self time unless children. The text without blank lines."""
    p = subprocess.run(["perf", "report", "-i", str(data),
                        "--children" if children else "--no-children", "-g", "none", "-q",
                        "--percent-limit", limit, "--sort", sort, *extra],
                       capture_output=True, text=True, timeout=300)
    return "\n".join(line.rstrip() for line in p.stdout.splitlines() if line.strip())


def perf_record(env, cmd, work):
    data = work / "perf.data"
    subprocess.run(["perf", "record", "-q", "-F", "999", "-g", "-o", str(data), "--",
                    "bash", "-c", cmd], env=env, check=True, capture_output=True, timeout=600)
    return perf_report(data, "0.7", "comm,dso"), perf_report(data, "0.7", "comm,dso,sym")


def perf_children(env, argv, data):
    """perf record -g of argv; the inclusive (children) view of symbols above 3%."""
    subprocess.run(["perf", "record", "-q", "-F", "999", "-g", "-o", str(data), "--", *argv],
                   env=env, check=True, capture_output=True, timeout=600)
    return perf_report(data, "3", "sym", children=True)


def perf_machine(env, argv, data, window=None):
    """perf record -a -g (every CPU) while argv runs. Returns (wall seconds, argv's stdout,
    the share of all samples per thread name, the same per thread name, DSO and symbol).
    window: a function of argv's stdout giving the (from, to) wall-clock stamps to report
    on, else the whole run."""
    t0 = time.time()
    p = subprocess.run(["perf", "record", "-q", "-a", "-F", "999", "-g", "-o", str(data), "--",
                        *argv], env=env, capture_output=True, text=True, timeout=900)
    t1 = time.time()
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed under perf: {p.stderr[-500:]}")
    extra = []
    if window:
        lo, hi = window(p.stdout)
        extra = ["--time", f"{max(0.0, 100 * (lo - t0) / (t1 - t0)):.1f}%-"
                           f"{min(100.0, 100 * (hi - t0) / (t1 - t0)):.1f}%"]
    return (t1 - t0, p.stdout, perf_report(data, "1", "comm", *extra),
            perf_report(data, "1.5", "comm,dso,sym", *extra))


def save_result(stdout):
    """bench/checkpoint_child.py's JSON line: its stamps and step durations."""
    return json.loads(stdout.strip().splitlines()[-1])


def smaps_kinds(pid):
    """Resident KiB of a live process by kind of mapping (from /proc/PID/smaps), or None."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return None
    kinds, kind = collections.Counter(), None
    for line in text.splitlines():
        if SMAPS_HEAD.match(line):
            f = line.split(None, 5)
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            name = f[5].strip() if len(f) > 5 else ""
            size = hi - lo
            if name.startswith("/"):
                kind = "files mapped (the program and its shared libraries)"
            elif name == "[heap]":
                kind = "heap (malloc's main arena)"
            elif name.startswith("["):
                kind = "main stack and kernel mappings"
            elif size == 8 << 20:
                kind = "thread stacks, 8 MiB reserved each (the program's threads)"
            elif size == 256 << 10:
                kind = "thread stacks, 256 KiB reserved each (rws-fetch)"
            else:
                kind = ("other anonymous: the threads' malloc arenas and blocks malloc maps "
                        "by themselves (≥ 128 KiB)")
        elif line.startswith("Rss:") and kind:
            kinds[kind] += int(line.split()[1])
    return kinds


def peak_kinds(argv, env, agent=False):
    """Runs argv; samples its smaps (and, with agent, the fetch agent's) every 50 ms.
    Returns (ok, the process's kinds at its largest sample, the agent's at its largest)."""
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    best, best_agent = collections.Counter(), collections.Counter()
    deadline = time.monotonic() + 600
    while p.poll() is None and time.monotonic() < deadline:
        for pid, keep in [(p.pid, "reader")] + [(a, "agent") for a in
                                                 (common.agent_cpus() if agent else {})]:
            k = smaps_kinds(pid)
            if not k:
                continue
            if keep == "reader" and sum(k.values()) > sum(best.values()):
                best = k
            if keep == "agent" and sum(k.values()) > sum(best_agent.values()):
                best_agent = k
        time.sleep(0.05)
    if p.poll() is None:
        p.kill()
    return p.wait() == 0, best, best_agent


def task_clock_ms(argv, env, runs=30):
    p = subprocess.run(["perf", "stat", "-x", ",", "-r", str(runs), "-e", "task-clock", "--",
                        *argv], env=env, capture_output=True, text=True, timeout=300)
    for line in p.stderr.splitlines():
        if "task-clock" in line:
            return float(line.split(",")[0])
    return None


def machine_profiles_big(server, env, work, cache, s3get, mc):
    """Section 5: the cold 1 GiB read through rwsplit and by the ceiling client."""
    common.log("profile: 1 GiB object, perf record -a")
    src = work / "one.bin"
    with open(src, "wb") as f:
        for _ in range(BIG_BYTES // (8 * MiB)):
            f.write(os.urandom(8 * MiB))
    mc.run("cp", "--quiet", str(src), mc.target(f"{BUCKET}/big/one.bin"), timeout=600)
    src.unlink()
    keys = work / "big-keys.txt"
    keys.write_text(f"big/one.bin {BIG_BYTES}\n")
    runs = {}
    for name, argv, run_env in (
            ("rwsplit: dd if=ROUTE/one.bin of=/dev/null bs=1M",
             ["dd", f"if={BIG_ROUTE}/one.bin", "of=/dev/null", "bs=1M"], env),
            ("ceiling: s3get, 16 ranged GETs of 8 MiB in flight",
             [str(s3get), server.endpoint, BUCKET, "16", str(keys), str(8 * MiB)],
             server.child_env())):
        # The first pass after a pause pays the VM's first touch of memory it had given back
        # to the host (see checkpoint_child.warm_memory); the bench's passes run back to
        # back, so the profile is of a second pass.
        for profiled in (False, True):
            shutil.rmtree(cache, ignore_errors=True)
            common.drop_caches()
            if profiled:
                runs[name] = perf_machine(run_env, argv, work / "perf-big.data")
            else:
                subprocess.run(argv, env=run_env, capture_output=True, timeout=600, check=True)
    return runs


def machine_profiles_ckpt(env, work):
    """Section 6: a 200-file checkpoint save through the write route and to local disk,
    reported over the save's own window (the child's first open to its last close)."""
    common.log("profile: checkpoint save, perf record -a")
    src = work / "ckpt-src"
    src.mkdir()
    rng = random.Random(1)
    total = 0
    for i in range(CKPT_FILES):
        size = rng.randint(MiB, 8 * MiB)
        (src / f"shard-{i:03d}.bin").write_bytes(os.urandom(size))
        total += size
    child = REPO / "bench" / "checkpoint_child.py"
    local = work / "local-save"
    runs = {}
    for name, dest, run_env in (("rwsplit write route", f"{CKPT_ROUTE}/run", env),
                                ("local disk", str(local), common.child_env())):
        argv = [sys.executable, str(child), "save", dest, "--src", str(src),
                "--warm", str(total * 5 // 4), "--warm-dir", str(work)]

        def window(out):
            got = save_result(out)
            return got["t_close"] - got["save_s"], got["t_close"]
        common.drop_caches()
        runs[name] = perf_machine(run_env, argv, work / "perf-ckpt.data", window)
        shutil.rmtree(local, ignore_errors=True)
    return runs, total


def machine_lines(runs, what):
    out = []
    for name, (wall, stdout, comm, comm_dso) in runs.items():
        out += [f"**{name}** ({what(wall, stdout)}). Samples per thread name:", "", "```",
                comm, "```", "", "Per thread name, DSO and symbol (self time, ≥ 1.5% of the "
                "samples):", "", "```", comm_dso, "```",
                ""]
    return out


def big_section(runs, shown):
    body = ["", "## A cold 1 GiB sequential read, the whole machine", "",
            "Why `dd` of one 1 GiB object stays below the server ceiling (section "
            "*large-file*): `perf record -a -F 999 -g` (every CPU, every process) of each "
            "command, MinIO's page cache dropped and the rwsplit cache empty before each, "
            "after one unprofiled pass of the same command (the first pass after a pause "
            "pays this VM's first touch of memory it had given back to the host). "
            f"rwsplit ran with `{common.env_line(shown)}`, the object on a read route with "
            "prefetch off. Thread names: rwsplit's own threads are `rws-fetch`, MinIO's "
            "`minio`, an idle CPU `swapper`; `dd` is the reading thread.", ""]
    return body + machine_lines(runs, lambda wall, out: f"{wall:.2f} s under perf") + [
        "Reading: on 2 cores the CPUs are the budget, and the server needs most of them "
        "(`minio`: reading its file, `_copy_to_iter` into the sockets, and its bitrot "
        "hash, `highwayhash`). The ceiling client takes little, as it drops the bodies. "
        "Through rwsplit, the GETs run in the fetch agent (`rws-agent-conn`, a thread per "
        "connection, writing into the fd the reader passed): every range is received, "
        "copied into the cache's tmpfs file (`copy_folio_from_iter_atomic`), and the "
        "fill GETs of one file wait for each other on its inode lock "
        "(`rwsem_spin_on_owner`); then `dd` copies it out again. That CPU is taken from "
        "MinIO, and the idle share (`swapper`) shows what was left over. Serializing "
        "those writes on a sleeping lock of our own instead was tried (256 mutexes by "
        "inode around each pwrite): 650 against 709 MB/s over 4 alternating cold passes, "
        "within this machine's noise, and not kept."]


def ckpt_section(ckpt, shown):
    runs, total = ckpt
    body = ["", f"## A {CKPT_FILES}-file checkpoint save, the whole machine", "",
            f"Why the {CKPT_FILES}-file save (1–8 MiB each, {total / MiB:.0f} MiB) returns "
            "later through a write route than to local disk (section *checkpoint*): "
            "`perf record -a -F 999 -g` of `bench/checkpoint_child.py save DEST --src SRC "
            "--warm …` (page cache dropped first), the report limited to the save's own "
            "window, from its first open to its last close (perf report --time, as a share "
            "of the recording). The write route ran with "
            f"`{common.env_line(shown)}`. The writer is the program's main thread "
            "(`python`); rwsplit's uploads run on `rws-upload` and `rws-upload-part` "
            "threads in the same process, MinIO is `minio`, writeback `kworker/…`.", ""]

    def what(wall, out):
        got = save_result(out)
        return (f"save {got['save_s']:.3f} s: open {got['open_s']:.3f}, write "
                f"{got['write_s']:.3f}, close {got['close_s']:.3f}; {wall:.2f} s under perf")
    return body + machine_lines(runs, what) + [
        "Reading: to local disk the writer (`python`, copying into the page cache: "
        "`copy_folio_from_iter_atomic`) has one CPU to itself and the other idles. "
        "Through the write route the writer does the same work into the spool, but each "
        "file closed is uploaded at once, so during the save MinIO stores the files "
        "closed first (its own copy into the page cache and the MD5 of every PUT, "
        "`crypto/md5`) and takes CPU and memory bandwidth from the writer on this 2-core "
        "machine; rwsplit's own upload threads (`rws-upload`) are a small share. Holding "
        "the uploads back until the program stops writing would shorten the save and "
        "lengthen the time to durable; rwsplit keeps the checkpoint's time to durable "
        "short instead."]


def memory_section(mem_rw, nfiles):
    ok_rw, rw, agent = mem_rw
    kinds = sorted(set(rw) | set(agent), key=lambda k: -rw.get(k, 0))
    mib = lambda kib: f"{kib / 1024:.1f}"  # noqa: E731
    body = ["", f"## Memory: one process, {MEM_THREADS} threads", "",
            f"Where the reader's and the fetch agent's memory goes (DESIGN.md: *resident "
            f"memory ≤ 64 MiB beyond the cache budget*; section *many-files*, memory): `mtread "
            f"{MEM_THREADS} PATHS` over the {nfiles} objects through rwsplit, cold; "
            "`/proc/PID/smaps` sampled every 50 ms, resident MiB by kind of mapping at the "
            "largest sample (the fetch agent's at its own largest)."
            + ("" if ok_rw else " The run failed: read with care."), "",
            "| kind of mapping | reader | fetch agent |", "|---|---|---|"]
    for k in kinds:
        body.append(f"| {k} | {mib(rw.get(k, 0))} | {mib(agent.get(k, 0))} |")
    body.append(f"| **total** | **{mib(sum(rw.values()))}** | **{mib(sum(agent.values()))}** |")
    body += ["", "Reading: mtread's own share is what it needs on local disk (section "
             "*many-files*, memory: a 1 MiB read buffer per thread, of which a 128 KiB "
             "object touches 128 KiB, and its stacks). What rwsplit adds to the reader is "
             "the stack its open path writes in each reading thread (the 8 MiB row, tens of "
             "KiB per thread: path buffers of the shadow tree, the cache and the agent "
             "request) and its own small allocations; the reader loads no store client and "
             "holds no HTTP connection, since every fetch goes through the agent "
             "(`agent_handoff` = 0). The agent serves each connection on a thread of its "
             "own, with a libcurl handle (32 KiB receive buffer) per request in flight and "
             "up to 32 body batches of 128 KiB shared by all (s3/s3_transport.c); the store "
             "client's libraries are its files row."]
    return body


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true", help="500 files")
    args = ap.parse_args(argv)
    nfiles = 500 if args.quick else args.files
    if not shutil.which("perf"):
        replace_section(args.out, "profile", "# Profile\n\nperf is not installed: no profile.\n")
        return 0
    build = Path(args.build) if Path(args.build).is_absolute() else REPO / args.build
    lib, s3lib = build / "lib" / "librwsplit.so", build / "lib" / "librwsplit-s3.so"
    work = Path(tempfile.mkdtemp(prefix="rwbench-prof-", dir="/var/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="rwbench-prof-", dir="/dev/shm"))
    try:
        with MinioServer() as server:
            common.log(f"profile: {nfiles} files")
            make_data(work / "data", nfiles)
            mc = Mc(server)
            mc.mb(BUCKET)
            mc.run("cp", "--recursive", "--quiet", f"{work / 'data'}/",
                   mc.target(f"{BUCKET}/data/"), timeout=900)
            cache = shm / "cache"
            conf = work / "rwsplit.conf"
            spool = work / "spool"
            conf.write_text(f"[global]\ncache_dir = {cache}\n\n" + server.config_text(
                routes=[("read", ROUTE, f"s3://{BUCKET}/data/", {"prefetch": "listing"}),
                        ("read", BIG_ROUTE, f"s3://{BUCKET}/big/", {"prefetch": "off"}),
                        ("write", CKPT_ROUTE, f"s3://{BUCKET}/ckpt/", {"spool": str(spool)})]))
            env, shown = common.rwsplit_env(server, lib, conf)

            def cold(n):
                shutil.rmtree(cache, ignore_errors=True)
                return PIPELINE.format(root=ROUTE, n=n)
            common.log("profile: perf record of the cold pipeline")
            dso, syms = perf_record(env, cold(50), work)
            common.log("profile: per-process load costs")
            plain = common.child_env()
            loads = [("plain", task_clock_ms(["cat", "/dev/null"], plain))]
            for name, pre in (("librwsplit.so preloaded (inactive path)", lib),
                              ("libcurl.so.4 preloaded", "libcurl.so.4"),
                              ("librwsplit-s3.so preloaded (the client and its libraries)",
                               s3lib)):
                loads.append((name, task_clock_ms(["cat", "/dev/null"],
                                                  dict(plain, LD_PRELOAD=str(pre)))))
            ndeps = len([ln for ln in common.run_text(["ldd", str(s3lib)]).splitlines()
                         if "=>" in ln])
            common.log("profile: files per process")
            per = []
            for n in (5, 50, 500):
                p = common.timed(["bash", "-c", cold(n)], env, server_pid=server.pid)
                per.append((n, p))
            common.log("profile: one process, 32 threads")
            rels = sorted(str(f.relative_to(work / "data")) for f in (work / "data").rglob("*")
                          if f.is_file())
            (work / "keys.txt").write_text("".join(
                f"data/{r} {(work / 'data' / r).stat().st_size}\n" for r in rels))
            (work / "paths.txt").write_text("".join(f"{ROUTE}/{r}\n" for r in rels))
            mtread = common.build_tool(work, "mtread", ["-pthread"])
            s3get = common.build_tool(work, "s3get", ["-lcurl"])
            mt_argv = [str(mtread), str(MT_THREADS), str(work / "paths.txt")]
            shutil.rmtree(cache, ignore_errors=True)
            mt_run = common.timed(mt_argv, env, server_pid=server.pid)
            ceiling_run = common.timed([str(s3get), server.endpoint, BUCKET, str(MT_THREADS),
                                        str(work / "keys.txt")], server.child_env(),
                                       server_pid=server.pid, keep_stdout=True)
            if f"objects={len(rels)} " not in (ceiling_run.stdout or "") or \
                    "failed=0" not in ceiling_run.stdout:
                ceiling_run.ok = False
                ceiling_run.note = f"s3get said {(ceiling_run.stdout or '').strip()!r}"
            shutil.rmtree(cache, ignore_errors=True)
            mt_profile = perf_children(env, mt_argv, work / "perf-mt.data")
            common.log(f"profile: memory of mtread, {MEM_THREADS} threads")
            shutil.rmtree(cache, ignore_errors=True)
            mem_rw = peak_kinds([str(mtread), str(MEM_THREADS), str(work / "paths.txt")], env,
                                agent=True)
            big = machine_profiles_big(server, env, work, cache, s3get, mc)
            ckpt = machine_profiles_ckpt(env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)

    body = ["# Profile: where the time goes", "",
            f"Generated by `.tools/venv/bin/python bench/profile.py --out {args.out}` "
            f"({nfiles} files of 80–140 KB in 4 directories on a MinIO started by the script; "
            f"{common.lib_fact(lib)}). Why the cold `find | xargs -P4 cat` rows stay below "
            "the server ceiling (section *small-files*), then the 1 GiB sequential read and "
            "the 200-file checkpoint save (their own sections below).", "",
            "## perf record -F 999 -g of the cold pipeline", "",
            f"`{common.env_line(shown)} perf record -F 999 -g -- bash -c "
            f"'{PIPELINE.format(root=ROUTE, n=50)}'`, empty cache, prefetch = listing. "
            "Share of samples per command and DSO, over the whole process tree (bash, find, "
            "xargs, every cat and rwsplit's threads in them, and the fetch agent, `rwsplit`: "
            "the first cat that fetches starts it, and perf follows it as that cat's "
            "descendant):", "", "```", dso, "```", "",
            "Top symbols (≥ 0.7% of samples):", "", "```", syms, "```", "",
            "## What loading the store client costs each process", "",
            "`perf stat -r 30 -e task-clock -- cat /dev/null` with each library preloaded "
            "(the client library is loaded only by a process that must fetch something; "
            f"`ldd` lists {ndeps} shared libraries behind it, Debian's libcurl brings most):",
            "", "| variant | task-clock ms per process |", "|---|---|"]
    for name, ms in loads:
        body.append(f"| {name} | {common.fmt(ms, 2)} |")
    body += ["", "## Files per process", "",
             "The cold pipeline with `xargs -n N` (N files per `cat`), empty cache each time; "
             "the *client CPU* is the whole process tree's:", "",
             "| files per cat | cat processes | wall s | client CPU s | MinIO CPU s | "
             "client CPU per file ms |", "|---|---|---|---|---|---|"]
    for n, p in per:
        body.append(f"| {n} | {-(-nfiles // n)} | {p.seconds:.2f} | {p.client_cpu:.2f} | "
                    f"{p.server_cpu:.2f} | {1000 * p.client_cpu / nfiles:.2f} |"
                    + ("" if p.ok else f" failed: {p.note}"))
    body += ["", "Reading: the client's CPU per file falls as each process reads more files, "
             "so part of it is per process: the program's own start (exec, dynamic loading, "
             "its buffers' first page faults) and rwsplit's (its worker threads and their "
             "connections to the fetch agent). Before the agent, each process that fetched "
             "loaded libcurl's ~40 libraries (the `librwsplit-s3.so` row above) and opened "
             "its own connections, and that was most of the gap to the ceiling (`ld-linux` "
             "was 17% of the samples and the client CPU per file was 2.89 / 0.91 / 0.53 ms at 5 / "
             "50 / 500 files per cat in this section's run of build 2142ebc). What is per file is the agent's: a GET "
             "written into a tmpfs file (`pwrite` → `copy_folio_from_iter_atomic`, which on "
             "this VM includes the hypervisor's cost of first touching memory it had taken "
             "back) and the cache entry's lock, rename and open. On 2 cores the client's CPU "
             "and MinIO's compete, so every millisecond of client CPU lowers the "
             "throughput."]
    body += ["", f"## One process, {MT_THREADS} threads", "",
             f"`mtread {MT_THREADS} PATHS` (bench/mtread.c: open, read fully, close; "
             "many_files.py's reader) over the same objects through rwsplit, cold cache, next "
             f"to the ceiling client `s3get ENDPOINT {BUCKET} {MT_THREADS} KEYS` (libcurl "
             "multi, bodies dropped) on the same MinIO. No process starts here, so what "
             "remains is per file:", "",
             "| client | wall s | client CPU s | MinIO CPU s | client CPU per file ms |",
             "|---|---|---|---|---|"]
    for name, p in (("rwsplit + mtread", mt_run), ("s3get (ceiling)", ceiling_run)):
        body.append(f"| {name} | {p.seconds:.2f} | {p.client_cpu:.2f} | {p.server_cpu:.2f} | "
                    f"{1000 * p.client_cpu / nfiles:.2f} |" + ("" if p.ok else f" failed: {p.note}"))
    body += ["", f"`{common.env_line(shown)} perf record -F 999 -g -- mtread {MT_THREADS} PATHS`"
             ", cold cache; inclusive share of samples (a function with everything it "
             "calls), entries above 3%:", "", "```", mt_profile, "```", "",
             "Reading: rwsplit keeps every object as a file in the cache (the design: a "
             "routed file is a real kernel fd), so per file it allocates and fills tmpfs pages "
             "(`pwrite` → `shmem_alloc_and_add_folio`, `copy_folio_from_iter_atomic`), creates, "
             "renames and unlinks cache entries (`openat`, `renameat`, a lock file), and the "
             "reader copies the bytes out again (`read` → `shmem_file_read_iter`); each of its "
             "threads waits for the fetch agent's answer on its own connection, and the agent "
             "serves each connection with a thread on its own HTTP connection (`poll`, "
             "scheduler switches), where the ceiling client drives every connection from one "
             "thread. The ceiling does none of the cache work and drops the bodies."]
    body += big_section(big, shown) + ckpt_section(ckpt, shown) + memory_section(mem_rw, nfiles)
    replace_section(args.out, "profile", "\n".join(body))
    common.log(f"profile: section written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
