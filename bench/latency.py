#!/usr/bin/env python3
"""Every read workload at added store latency (issue 17, item 1).

On OSS or S3 every GET waits 5-30 ms for its first byte; MinIO on loopback answers in well
under one. Here a Toxiproxy (tests/harness/toxiproxy.py, the pinned .tools/bin/toxiproxy-server)
sits between every client and one MinIO on 127.0.0.1, with a latency toxic on its downstream
(each response's bytes leave the proxy --latency ms after they arrive, so a GET's first byte
comes that much later and its throughput is unchanged), and each workload runs at every
latency with the same rows, the ceiling client included:

- small files: `find ROOT -type f | xargs -P4 -n 50 cat > /dev/null` over --files objects of
  80-140 KB in 4 directories, cold. Rows: the ceiling (bench/s3get.c, libcurl multi, 16 GETs
  in flight, keys from a file), rwsplit (prefetch = listing, empty cache_dir), s3fs with the
  read-tuned options (a fresh mount). At 0, 10 and 30 ms.
- many files, one process: bench/mtread.c with 32 threads over the same objects, cold. Rows:
  the ceiling with 32 GETs in flight, rwsplit. At 0 and 10 ms.
- large file: `dd bs=1M` of one --large-mib object, cold. Rows: the ceiling (s3get, 8 MiB
  ranged GETs, 16 in flight), rwsplit, s3fs read-tuned (stopped after --fuse-cap s; its MB/s
  is then what it read over that time). At 0 and 10 ms.
- metadata: `ls -l` of one directory of the small files and `find ROOT | wc -l` over all,
  a fresh cache or mount each pass. Rows: rwsplit, s3fs read-tuned. At 0 and 10 ms.

Checkpoint saves at 0 and 10 ms are bench/tree_save.py's (section tree-save) and
bench/torch_peer.py's (section torch-peer).

*Cold*: before each pass the page cache is dropped (MinIO reads from disk), rwsplit's
cache_dir is emptied (its fetch agent exits with it), s3fs is mounted afresh. rwsplit and the
ceiling run --runs times per latency, s3fs --alt-runs times; rounds interleave the rows;
medians are reported. After the timed passes of each latency (untimed): the small files are
read through rwsplit and s3fs in sorted order and their sha256 compared with the local copy's;
the large file's sha256 through rwsplit too; s3get must report every object and byte.

    .tools/venv/bin/python bench/latency.py [--files 2000] [--large-mib 1024] [--runs 3]
        [--alt-runs 1] [--latency 0 10 30] [--fuse-cap 20] [--build build] [--quick]
        [--out bench/RESULTS.md]

--quick is a trial (400 files, 128 MiB, 1 run, latencies 0 and 10; its JSON is not saved
for the chart). Needs root (drop_caches, FUSE) and GNU time. Writes section `latency` of
--out and bench/results/latency.json.
"""

import argparse
import hashlib
import json
import random
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.common import fmt, log  # noqa: E402
from bench.results_md import replace_section  # noqa: E402
from tests.harness.minio import Mc, MinioServer  # noqa: E402
from tests.harness.toxiproxy import Toxiproxy  # noqa: E402

SECTION = "latency"
BUCKET = "rwbench-lat"
SMALL = "small/"
LARGE_KEY = "large/big.bin"
ROUTE = "/mnt/rwbench-lat"           # read route -> s3://BUCKET/ (nothing on disk there)
NDIRS = 4
MiB = 1 << 20
PART = 8 * MiB
CAT = "find {root} -type f | xargs -P4 -n 50 cat > /dev/null"
SHA = "find {root} -type f -print0 | LC_ALL=C sort -z | xargs -0 cat | sha256sum"
TARGETS = {  # issue 17: rwsplit over the ceiling (or s3fs), per workload and latency
    ("small", "ceiling"): lambda ms: 0.8 if ms == 0 else 0.9,
    ("small", "s3fs"): lambda ms: 3.0,
    ("large", "ceiling"): lambda ms: 0.8,
}
CEILING, RWSPLIT, S3FS = "ceiling: s3get", "rwsplit", "s3fs, read-tuned"


@dataclass
class Row:
    """One way of running one workload's command; prepare() makes it cold."""
    workload: str
    system: str
    argv: list
    env: dict
    shown: str
    runs: int
    prepare: object = None
    mount: object = None              # s3fs: a FuseMount made fresh per pass
    timeout: float = common.PASS_TIMEOUT
    capped: bool = False              # dd stopped after --fuse-cap s: MB/s of what it read
    verify: object = None             # Pass -> "" or why it is wrong
    passes: dict = field(default_factory=dict)   # latency -> [Pass]


@dataclass
class Data:
    rels: list
    small_bytes: int
    large_bytes: int
    local: Path


def make_data(work, nfiles, large_mib, seed):
    rng = random.Random(seed)
    local = work / "local"
    rels, total = [], 0
    for i in range(nfiles):
        rel = f"d{i % NDIRS}/f{i:05d}.bin"
        p = local / "small" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        n = rng.randint(80_000, 140_000)
        p.write_bytes(rng.randbytes(n))
        rels.append(rel)
        total += n
    big = local / "large" / "big.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    with open(big, "wb") as f:
        for _ in range(large_mib):
            f.write(rng.randbytes(MiB))
    return Data(rels, total, large_mib * MiB, local)


class Via:
    """What s3fs_mount needs of a server, with the proxy's endpoint."""

    def __init__(self, server, endpoint):
        self.endpoint, self.access_key, self.secret_key = (endpoint, server.access_key,
                                                           server.secret_key)


def s3get_check(objects, nbytes):
    def verify(p):
        want = f"objects={objects} " if objects else ""
        line = p.stdout.strip()
        ok = f"bytes={nbytes} " in line and line.endswith("failed=0") and want in line
        return "" if ok else f"s3get said {line!r}, expected {want}bytes={nbytes} failed=0"
    return verify


def dd_check(nbytes):
    """dd read nbytes (None: anything, for a capped pass)."""
    def verify(p):
        got = dd_bytes(p.stdout)
        ok = got > 0 and (nbytes is None or got == nbytes)
        return "" if ok else f"dd said {p.stdout.strip()!r}, expected {nbytes or 'some'} bytes"
    return verify


def mtread_check(files, nbytes):
    def verify(p):
        try:
            got = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return f"mtread said {p.stdout.strip()!r}"
        ok = got.get("files") == files and got.get("bytes") == nbytes
        return "" if ok else f"mtread read {got}, expected {files} files, {nbytes} bytes"
    return verify


def build_rows(ctx, args):
    srv, toxi, work, data = ctx["server"], ctx["toxi"], ctx["work"], ctx["data"]
    ep = toxi.endpoint
    cache = ctx["shm"] / "cache"
    conf = common.read_route_config(srv, work / "rwsplit.conf", cache, ROUTE,
                                    f"s3://{BUCKET}/", "8GiB", endpoint=ep)
    rw_env, rw_shown = common.rwsplit_env(srv, ctx["lib"], conf)
    plain = srv.child_env()
    mnt = work / "mnt"
    via = Via(srv, ep)
    fresh = lambda: common.empty_dir(cache)  # noqa: E731
    s3fs = lambda: common.s3fs_mount(via, BUCKET, mnt, work, tuned=True)  # noqa: E731
    rows = []
    for wl, in_flight, keys, part in (("small", 16, ctx["small_keys"], None),
                                      ("many", 32, ctx["small_keys"], None),
                                      ("large", 16, ctx["large_keys"], PART)):
        argv = [str(ctx["s3get"]), ep, BUCKET, str(in_flight), str(keys)] + \
            ([str(part)] if part else [])
        n_obj = len(data.rels) if wl != "large" else 0
        nbytes = data.small_bytes if wl != "large" else data.large_bytes
        rows.append(Row(wl, f"{CEILING}, {in_flight} {'ranged ' if part else ''}GETs in "
                        "flight", argv, plain, shlex.join(argv), args.runs,
                        verify=s3get_check(n_obj, nbytes)))
    bash = lambda cmd: ["bash", "-c", cmd]  # noqa: E731
    for root, system, env, shown_env, runs, prep, mount in (
            (f"{ROUTE}/small", RWSPLIT, rw_env, rw_shown, args.runs, fresh, None),
            (f"{mnt}/small", S3FS, plain, {}, args.alt_runs, None, s3fs)):
        cmd = CAT.format(root=root)
        rows.append(Row("small", system, bash(cmd), env, common.shown_command(shown_env,
                        bash(cmd)), runs, prep, mount))
        ls = f"ls -l {root}/d0 > /dev/null && find {root} | wc -l"
        rows.append(Row("metadata", system, bash(ls), env, common.shown_command(
            shown_env, bash(ls)), runs, prep, mount))
        # dd's last line ("N bytes ... copied") on stdout; an s3fs pass is stopped with
        # SIGINT after --fuse-cap s, and dd then reports what it has read.
        cap = f"timeout -s INT {args.fuse_cap:g} " if mount else ""
        dd = bash(f"{cap}dd if={root.rsplit('/', 1)[0]}/large/big.bin of=/dev/null bs=1M "
                  "2>&1 >/dev/null | tail -n 1")
        rows.append(Row("large", system, dd, env, common.shown_command(shown_env, dd), runs,
                        prep, mount, capped=bool(mount),
                        verify=dd_check(None if mount else data.large_bytes)))
    mt = [str(ctx["mtread"]), "32", str(ctx["mt_list"])]
    rows.append(Row("many", RWSPLIT, mt, rw_env, common.shown_command(rw_shown, mt),
                    args.runs, fresh, verify=mtread_check(len(data.rels), data.small_bytes)))
    return rows


def latencies_of(row, args):
    return [ms for ms in args.latency if row.workload == "small" or ms <= 10]


def dd_bytes(line):
    """Bytes dd says it copied (its last line: 'N bytes (...) copied, ...')."""
    try:
        return int(line.split()[0])
    except (ValueError, IndexError):
        return 0


def one_pass(row, ms, ctx):
    common.drop_caches()
    if row.prepare:
        row.prepare()
    mount = row.mount() if row.mount else None
    try:
        if mount:
            mount.mount()
        p = common.timed(row.argv, row.env, timeout=row.timeout,
                         server_pid=ctx["server"].pid, keep_stdout=True,
                         daemon_pid=mount.pid if mount else None)
        if row.capped and p.ok and dd_bytes(p.stdout) < ctx["data"].large_bytes:
            p.note = "capped"
        if p.ok and row.verify and (why := row.verify(p)):
            p.ok, p.note = False, why
        return p
    finally:
        if mount:
            mount.unmount()


def checks(ctx, ms, rows):
    """Untimed: sha256 of the small files in sorted order, and of the large file, through
    rwsplit (cold) and s3fs, against the local copy's."""
    data, out = ctx["data"], []
    want_small = subprocess.run(["bash", "-c", SHA.format(root=data.local / "small")],
                                capture_output=True, text=True, check=True).stdout.split()[0]
    want_large = hashlib.sha256((data.local / "large" / "big.bin").read_bytes()).hexdigest()
    for system in (RWSPLIT, S3FS):
        row = next(r for r in rows if r.workload == "small" and r.system == system)
        if row.prepare:
            row.prepare()
        mount = row.mount() if row.mount else None
        root = f"{ROUTE}" if not mount else str(ctx["work"] / "mnt")
        try:
            if mount:
                mount.mount()
            got = subprocess.run(["bash", "-c", SHA.format(root=f"{root}/small")],
                                 env=row.env, capture_output=True, text=True, timeout=600)
            out.append((ms, f"{system}: sha256 of the {len(data.rels)} small files in order",
                        got.stdout.split()[:1] == [want_small] and got.returncode == 0))
            if not mount:
                got = subprocess.run(["sha256sum", f"{root}/large/big.bin"], env=row.env,
                                     capture_output=True, text=True, timeout=600)
                out.append((ms, f"{system}: sha256 of the large file",
                            got.stdout.split()[:1] == [want_large]))
        finally:
            if mount:
                mount.unmount()
    return out


def measure(rows, ctx, args):
    results = []
    for ms in args.latency:
        common.set_store_latency(ctx["toxi"], ms)
        mine = [r for r in rows if ms in latencies_of(r, args)]
        for rnd in range(max(args.runs, args.alt_runs)):
            log(f"+{ms} ms, round {rnd + 1}, load average {common.load_average()}")
            for r in mine:
                if rnd >= r.runs:
                    continue
                p = one_pass(r, ms, ctx)
                r.passes.setdefault(ms, []).append(p)
                log(f"  {r.workload:8} {r.system:40} {p.seconds:7.3f} s "
                    f"{'ok' if p.ok else 'FAILED ' + p.note}")
        results += checks(ctx, ms, rows)
    return results


def med(row, ms, what="seconds"):
    ok = [p for p in row.passes.get(ms, []) if p.ok]
    if not ok:
        return None
    if what == "cpu":
        return statistics.median(p.client_cpu for p in ok)
    return statistics.median(p.seconds for p in ok)


def rate(row, ms, data):
    """Files/s or MB/s of the row's median pass (capped dd passes: what they read)."""
    ok = [p for p in row.passes.get(ms, []) if p.ok]
    if not ok:
        return None
    if row.workload == "large":
        vals = [(data.large_bytes if row.system.startswith(CEILING) else dd_bytes(p.stdout))
                / p.seconds / 1e6 for p in ok]
    elif row.workload == "metadata":
        vals = [1 / p.seconds for p in ok]
    else:
        vals = [len(data.rels) / p.seconds for p in ok]
    return statistics.median(vals)


UNITS = {"small": "files/s", "many": "files/s", "large": "MB/s", "metadata": "passes/s"}
TITLES = {"small": "Small files, `xargs -P4 -n 50 cat`, cold",
          "many": "Many files, one process of 32 threads (mtread), cold",
          "large": "One large file, `dd bs=1M`, cold",
          "metadata": "Metadata, `ls -l` of one directory and `find | wc -l`, cold"}


def report(args, cmdline, rows, results, host, data, elapsed):
    L = ["# rwsplit benchmark: every workload at added store latency (issue 17)", "",
         f"Generated by `{cmdline}` in {elapsed:.0f} s. Do not edit by hand: run it again.", "",
         f"{len(data.rels)} objects of 80-140 KB ({data.small_bytes / 1e6:.0f} MB) in "
         f"{NDIRS} directories under `s3://{BUCKET}/{SMALL}` and one object of "
         f"{data.large_bytes // MiB} MiB, `s3://{BUCKET}/{LARGE_KEY}`, on one MinIO on "
         "127.0.0.1; every client talks to it through one Toxiproxy with a latency toxic on "
         "the downstream (*+N ms*: each response's first byte N ms later). Cold passes: page "
         "cache dropped, rwsplit's cache_dir empty, s3fs freshly mounted. Medians of "
         f"{args.runs} passes (s3fs: {args.alt_runs}); rows interleaved.", "",
         "## Machine", "", "| | |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in host]
    for wl in ("small", "many", "large", "metadata"):
        mine = [r for r in rows if r.workload == wl]
        lats = latencies_of(mine[0], args)
        L += ["", f"## {TITLES[wl]}", "",
              "| row | " + " | ".join(f"+{ms} ms: s ({UNITS[wl]}) [client CPU s]"
                                      for ms in lats) + " |",
              "|---|" + "---|" * len(lats)]
        for r in mine:
            cells = []
            for ms in lats:
                s, v, c = med(r, ms), rate(r, ms, data), med(r, ms, "cpu")
                n_ok = sum(p.ok for p in r.passes.get(ms, []))
                cells.append("failed" if s is None else
                             f"{fmt(s)} ({v:.0f}) [{c:.2f}]" +
                             (f" {n_ok}/{len(r.passes[ms])} ok" if n_ok < len(r.passes[ms])
                              else "") + (" capped" if r.capped and any(
                                  "capped" in p.note for p in r.passes[ms]) else ""))
            L.append(f"| {r.system} | " + " | ".join(cells) + " |")
        rw = next(r for r in mine if r.system == RWSPLIT)
        refs = [r for r in mine if r is not rw]
        L += ["", "rwsplit's rate over each row's (above 1: rwsplit is faster)" +
              (", against issue 17's targets" if any(k[0] == wl for k in TARGETS) else "") +
              ":", "", "| rwsplit over | " + " | ".join(f"+{ms} ms" for ms in lats) + " |",
              "|---|" + "---|" * len(lats)]
        for ref in refs:
            kind = "ceiling" if ref.system.startswith(CEILING) else "s3fs"
            cells = []
            for ms in lats:
                a, b = rate(rw, ms, data), rate(ref, ms, data)
                if a is None or b is None:
                    cells.append("–")
                    continue
                cell = f"{a / b:.2f}×"
                t = TARGETS.get((wl, kind))
                if t:
                    cell += f" (≥ {t(ms)}×: {'met' if a / b >= t(ms) else '**missed**'})"
                cells.append(cell)
            L.append(f"| {ref.system} | " + " | ".join(cells) + " |")
    L += ["", "## Checks (untimed, after each latency's passes)", "",
          "| latency | check | ok |", "|---|---|---|"]
    L += [f"| +{ms} ms | {what} | {'yes' if ok else '**NO**'} |" for ms, what, ok in results]
    failed = [(r, ms, p) for r in rows for ms, ps in r.passes.items() for p in ps if not p.ok]
    L += ["", "## Failed passes", ""]
    L += [f"- {r.workload}, {r.system}, +{ms} ms: {p.note}" for r, ms, p in failed] or ["none"]
    L += ["", "## Exact commands", ""]
    L += [f"- {r.workload}, {r.system}: `{r.shown}`" for r in rows]
    return "\n".join(L) + "\n"


def save(rows, args, data):
    groups = []
    for wl in ("small", "many", "large", "metadata"):
        for r in (r for r in rows if r.workload == wl):
            for ms in latencies_of(r, args):
                v = rate(r, ms, data)
                if v is not None:
                    groups.append({"group": f"{wl} +{ms} ms", "system": r.system,
                                   "value": round(v, 1), "unit": UNITS[wl]})
    common.save_json("latency", {"title": "Reads at added store latency (higher is better)",
                                 "unit": "per workload", "groups": groups}, trial=args.quick)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=None, help="small objects (2000)")
    ap.add_argument("--large-mib", type=int, default=None, help="the large object (1024)")
    ap.add_argument("--runs", type=int, default=None, help="rwsplit and ceiling passes (3)")
    ap.add_argument("--alt-runs", type=int, default=1, help="s3fs passes (1)")
    ap.add_argument("--latency", type=int, nargs="+", default=None,
                    help="added ms; the small files run at all, the rest at those <= 10")
    ap.add_argument("--fuse-cap", type=float, default=20, help="s3fs dd stops after this (s)")
    ap.add_argument("--build", type=Path, default=Path("build"))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--quick", action="store_true", help="a trial run")
    a = ap.parse_args(argv)
    a.files = a.files or (400 if a.quick else 2000)
    a.large_mib = a.large_mib or (128 if a.quick else 1024)
    a.runs = a.runs or (1 if a.quick else 3)
    a.latency = a.latency or ([0, 10] if a.quick else [0, 10, 30])
    if a.files < NDIRS or a.large_mib < 1 or not 1 <= a.runs <= 20:
        ap.error("--files >= 4, --large-mib >= 1, --runs 1..20")
    return a


def run(args, cmdline, started):
    lib = (args.build if args.build.is_absolute() else REPO / args.build) / "lib" / \
        "librwsplit.so"
    if not lib.exists():
        raise SystemExit(f"{lib} is missing: run make first")
    if why := common.fuse_reason() or common.tool_reason("s3fs"):
        raise SystemExit(f"s3fs rows cannot run: {why}")
    work = Path(tempfile.mkdtemp(prefix="rwbench-lat-", dir="/var/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="rwbench-lat-", dir="/dev/shm"))
    server = toxi = mc = None
    try:
        log(f"generating {args.files} small files and {args.large_mib} MiB")
        data = make_data(work, args.files, args.large_mib, args.seed)
        server = MinioServer().start()
        mc = Mc(server)
        mc.mb(BUCKET)
        mc.run("cp", "--recursive", "--quiet", f"{data.local}/", mc.target(f"{BUCKET}/"),
               timeout=1800)
        toxi = Toxiproxy(server.port, work).start()
        small_keys = work / "small-keys.txt"
        small_keys.write_text("".join(
            f"{SMALL}{r} {(data.local / 'small' / r).stat().st_size}\n" for r in data.rels))
        large_keys = work / "large-keys.txt"
        large_keys.write_text(f"{LARGE_KEY} {data.large_bytes}\n")
        mt_list = work / "mt-list.txt"
        mt_list.write_text("".join(f"{ROUTE}/small/{r}\n" for r in data.rels))
        ctx = {"server": server, "toxi": toxi, "work": work, "shm": shm, "data": data,
               "lib": lib, "s3get": common.build_tool(work, "s3get", ["-lcurl"]),
               "mtread": common.build_tool(work, "mtread", ["-pthread"]),
               "small_keys": small_keys, "large_keys": large_keys, "mt_list": mt_list}
        rows = build_rows(ctx, args)
        host = common.host_facts() + common.tool_facts() + [
            ("rwsplit", common.lib_fact(lib)),
            ("Toxiproxy", f"{toxi.endpoint} → {server.endpoint}, latency toxic downstream"),
            ("load average at start", common.load_average())]
        results = measure(rows, ctx, args)
        host.append(("load average at end", common.load_average()))
        text = report(args, cmdline, rows, results, host, data, time.monotonic() - started)
        replace_section(args.out, SECTION, text)
        save(rows, args, data)
        log(f"wrote section {SECTION} of {args.out} in {time.monotonic() - started:.0f} s")
        return 0 if all(ok for _, _, ok in results) else 1
    finally:
        if toxi:
            toxi.stop()
        common.release(server, mc, shm, work)


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_exit)
    return run(args, common.command_line("latency.py", argv), time.monotonic())


if __name__ == "__main__":
    sys.exit(main())
