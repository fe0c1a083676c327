#!/usr/bin/env python3
"""Metadata benchmark (issue 6, workload 5): listing and stat of one directory of 10,000 tiny
objects, through rwsplit and what users would pick instead, next to local disk, tmpfs and the
server's own LIST.

    .tools/venv/bin/python bench/metadata.py [--files 10000] [--runs 3] \
        [--out bench/RESULTS.md] [--build build] [--fuse-ops 'ls -l'] [--no-fuse] [--quick]

The data set: --files objects of 1-100 random bytes, s3://rwbench-meta/data/f00000.bin …,
all in one directory (no sub-prefix). They are uploaded as one tar with MinIO's snowball
auto-extract (one PUT that the server unpacks; 12 s against 18 s for `mc mirror` here),
then the bucket listing is checked against the data set (names and sizes). The same files
are written to a temp dir on the root filesystem (row *local disk*) and to /dev/shm (*tmpfs*).

Operations, each timed as one command (the whole process tree, start-up included):

    ls -l ROOT > /dev/null
    find ROOT > /dev/null
    python -S -c 'os.listdir + os.stat of every entry'   (one process; prints count and bytes)

The stat operation is one Python process (.tools/venv/bin/python -S) rather than
`find | xargs stat`, so that it times the stat calls, not stat(1) formatting and user-name
look-ups, and runs the same single process on every row; its output (entries, total bytes)
is checked against the data set in every pass.

Every row does each operation cold and then warm (right after, same cache or mount):

| row | what it is | cold means |
|---|---|---|
| server LIST (mc ls) | `mc ls s3://rwbench-meta/data/` to /dev/null: the pinned mc (Go, ListObjectsV2, 1000 keys a page) as one process. The ceiling: every row backed by the store needs at least this listing. The same command for every operation, so it is timed once per round and shown in every table | page cache dropped (MinIO reads every object's xl.meta from disk) |
| rwsplit read route | `LD_PRELOAD=DIR/lib/librwsplit.so RWSPLIT_CONFIG=…`, `[read /mnt/rwbench-meta/data]` → `s3://rwbench-meta/data/`, `prefetch = off` (a metadata workload: no object data is wanted, and `listing` would GET all of them in the background while the operation runs), `cache_dir` in /dev/shm. Metadata comes from the shadow tree (the directory's LIST materialized as sparse files in `cache_dir`, shared by every process; `listing_ttl` default 10 min) | empty `cache_dir`, page cache dropped |
| s3fs, default options | s3fs-fuse mounted in the foreground (bench/common.py s3fs_mount) | fresh mount, page cache dropped |
| s3fs, read-tuned options | the same plus `kernel_cache,max_stat_cache_size=100000,parallel_count=20` (s3fs 1.90's default max_stat_cache_size is already 100,000, so for metadata the two rows should match) | fresh mount, page cache dropped |
| rclone mount, --vfs-cache-mode full | bench/common.py rclone_mount, default options otherwise | fresh mount with an empty cache dir, page cache dropped |
| local disk | the files in a temp dir on the root filesystem | page cache dropped (dentries and inodes too: `echo 3`) |
| tmpfs (/dev/shm) | the files in /dev/shm | nothing to drop: both passes read memory |

The FUSE rows run only `ls -l` by default (`--fuse-ops`): s3fs and rclone send one HEAD per
file on a cold listing, so one cold pass of theirs takes 10-40 s at 10,000 files, and the
three operations on three FUSE rows for three rounds would take over 10 minutes.
`--fuse-ops 'ls -l,find,stat'` runs them all.

Rounds interleave the rows (the order rotates every round) so drift hits them alike. Ratios
are the other row's median seconds over rwsplit's (above 1: rwsplit is faster).

Checks: every stat pass must print the data set's count and total bytes. After the timed runs
(untimed): through rwsplit, cold and warm, `ls -l` (names and sizes) and
`find ROOT -type f -printf '%P %s %T@'` (names, sizes, mtimes) are compared with a boto3
`list_objects_v2` listing; the cold `ls -l` there and one more cold pass of `find` and of
`stat` run with `RWSPLIT_LOG=debug` to count the requests each sent (one LIST per 1000 keys,
no HEAD or GET expected). A pass that exits non-zero, runs over 300 s or fails its check is
listed with its stderr and left out of the statistics. Writes its own section of --out
(`metadata`) and bench/results/metadata.json (seconds, lower is better, one group per
operation and cold/warm; the ceiling's LIST is in every group).

Run time: an estimated 3-4 minutes with the defaults on an otherwise idle 2-core machine (7.7
minutes measured while other jobs kept the load average at 40-100); the cold FUSE passes take
most of it. Needs about 100 MB on the root filesystem and in /dev/shm, and root for drop_caches
and the FUSE mounts (without, the FUSE rows say why they are missing and cold passes start
from whatever page cache there is).
"""

import argparse
import io
import os
import random
import re
import shlex
import signal
import statistics
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (MC_BIN, VENV_PY, Pass, drop_caches, empty_dir,  # noqa: E402
                          env_line, fmt, fs_type, host_facts, lib_fact, load_average, log,
                          ok_seconds, ratio, rclone_mount, release, s3fs_mount, save_json,
                          stats, timed, tool_facts, tool_reason)
from bench.results_md import replace_section  # noqa: E402
from tests.harness.minio import Mc, MinioServer  # noqa: E402

SECTION = "metadata"
ROUTE = "/mnt/rwbench-meta/data"    # the rwsplit read route (nothing exists there on disk)
BUCKET = "rwbench-meta"
PREFIX = "data/"
SIZE_MIN, SIZE_MAX = 1, 100
STAT_PY = ('import os,sys; d=sys.argv[1]; '
           's=[os.stat(d+"/"+e).st_size for e in os.listdir(d)]; print(len(s),sum(s))')
OPS = {
    "ls -l": lambda root: ["bash", "-c", f"ls -l {shlex.quote(str(root))} > /dev/null"],
    "find": lambda root: ["bash", "-c", f"find {shlex.quote(str(root))} > /dev/null"],
    "stat": lambda root: [str(VENV_PY), "-S", "-c", STAT_PY, str(root)],
}
CEILING_OP = "LIST"
# One line per request: "GET bucket/key -> 200 (ok) 3ms"; a LIST is a GET of "bucket/".
REQUEST_RE = re.compile(r"^rwsplit\[\d+\] debug: ([A-Z]+) (\S*) -> (\d+)", re.MULTILINE)


# -- data set ------------------------------------------------------------------------------


def make_dataset(n, seed):
    """{name: bytes} of n tiny random files."""
    rng = random.Random(seed)
    return {f"f{i:05d}.bin": rng.randbytes(rng.randint(SIZE_MIN, SIZE_MAX)) for i in range(n)}


def write_local(files, root):
    root.mkdir(parents=True)
    for name, data in files.items():
        (root / name).write_bytes(data)


def bucket_listing(s3):
    """{name: (size, mtime epoch)} of everything under PREFIX, as boto3 lists it."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX):
        for o in page.get("Contents", []):
            out[o["Key"][len(PREFIX):]] = (o["Size"], o["LastModified"].timestamp())
    return out


def upload(s3, files):
    """One tar PUT that MinIO unpacks into objects (snowball auto-extract), then the listing
    must hold exactly the data set's names and sizes."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(PREFIX + name)
            info.size, info.mtime = len(data), now
            tf.addfile(info, io.BytesIO(data))
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="upload.tar", Body=buf.getvalue(),
                  Metadata={"snowball-auto-extract": "true"})
    listed = bucket_listing(s3)
    want = {name: len(data) for name, data in files.items()}
    if {k: v[0] for k, v in listed.items()} != want:
        raise RuntimeError(f"upload incomplete: {len(listed)} objects under {PREFIX}, "
                           f"expected {len(want)} with the data set's sizes")
    return listed


# -- rows ----------------------------------------------------------------------------------


@dataclass
class Row:
    """One way of reaching the directory. prepare() makes the next pass cold (untimed),
    finish() ends the warm pass (unmounts); passes[(op, "cold" | "warm")] lists Pass."""
    name: str
    root: Path
    env: dict                       # without the library
    preload: dict = field(default_factory=dict)   # set by `env` right before the command
    cold_means: str = ""
    prepare: object = None
    finish: object = None
    daemon_pid: object = None
    unavailable: str = ""
    ceiling: bool = False
    shown_cmd: object = None        # the ceiling's command (any operation), a FUSE mount's
    ops: tuple = tuple(OPS)         # the operations this row runs
    passes: dict = field(default_factory=dict)

    def wrap(self, argv):
        """argv started by env(1) with the row's variables: only the command's own processes
        get the library, not a timing wrapper around it; every row pays the same exec."""
        return ["env", *(f"{k}={v}" for k, v in self.preload.items()), *map(str, argv)]

    def argv(self, op):
        return self.wrap(self.shown_cmd if self.ceiling else OPS[op](self.root))

    def command(self, op):
        return shlex.join(self.argv(op))


def rwsplit_row(server, lib, work, shm):
    cache = shm / "cache"
    conf = work / "rwsplit.conf"
    conf.write_text(f"[global]\ncache_dir = {cache}\n\n" + server.config_text(
        routes=[("read", ROUTE, f"s3://{BUCKET}/{PREFIX}", {"prefetch": "off"})]))
    preload = {"LD_PRELOAD": lib, "RWSPLIT_CONFIG": conf}

    def prepare():
        empty_dir(cache)
        drop_caches()
    return Row("rwsplit read route", Path(ROUTE), plain_env(server), preload, "empty "
               "cache_dir, page cache dropped", prepare=prepare), conf, cache


def fuse_row(name, make_mount, cold_means, env, ops):
    """A FUSE row mounts afresh before every cold pass and unmounts after the warm one."""
    state = {}

    def prepare():
        state["m"] = m = make_mount()
        m.mount()
        drop_caches()

    def finish():
        if state.get("m"):
            state.pop("m").unmount()
    probe = make_mount()
    reason = tool_reason(probe.argv[0])
    return Row(name, probe.mnt / PREFIX.rstrip("/"), env, cold_means=cold_means,
               prepare=prepare, finish=finish, unavailable=reason,
               daemon_pid=lambda: state["m"].pid if state.get("m") else None,
               shown_cmd=probe.shown(), ops=ops)


def plain_env(server):
    """The commands' environment without the library."""
    return server.child_env({"LD_PRELOAD": None, "RWSPLIT_CONFIG": None})


def fuse_rows(server, work, ops):
    def rclone():
        cache = work / "rclone-cache"
        empty_dir(cache)
        return rclone_mount(server, BUCKET, work / "mnt-rclone", work, cache)
    return [
        fuse_row("s3fs, default options",
                 lambda: s3fs_mount(server, BUCKET, work / "mnt-s3fs", work), "fresh mount, "
                 "page cache dropped", plain_env(server), ops),
        fuse_row("s3fs, read-tuned options",
                 lambda: s3fs_mount(server, BUCKET, work / "mnt-s3fs-tuned", work, tuned=True),
                 "fresh mount, page cache dropped", plain_env(server), ops),
        fuse_row("rclone mount, --vfs-cache-mode full", rclone,
                 "fresh mount, empty cache dir, page cache dropped", plain_env(server), ops),
    ]


def local_rows(local, shm_files, server):
    env = plain_env(server)
    return [Row("local disk", local, env, cold_means="page cache dropped",
                prepare=drop_caches),
            Row("tmpfs (/dev/shm)", shm_files, env, cold_means="nothing to drop")]


def ceiling_row(mc):
    argv = [str(MC_BIN), "--no-color", "ls", mc.target(f"{BUCKET}/{PREFIX}")]
    return Row("server LIST (mc ls)", Path(), mc.env(), {"MC_CONFIG_DIR": mc.config_dir},
               "page cache dropped", prepare=drop_caches, ceiling=True, shown_cmd=argv)


# -- timing --------------------------------------------------------------------------------


def check_stat_output(stdout, files):
    want = f"{len(files)} {sum(len(d) for d in files.values())}"
    got = stdout.strip()
    return "" if got == want else f"stat printed {got!r}, expected {want!r} (entries bytes)"


def one_pass(row, op, files, server_pid):
    p = timed(row.argv(op), row.env, server_pid=server_pid, daemon_pid=row.daemon_pid,
              keep_stdout=(op == "stat"))
    if p.ok and op == "stat":
        problem = check_stat_output(p.stdout, files)
        if problem:
            p.ok, p.note = False, problem
    p.stdout = ""
    return p


def measure(rows, runs, files, server_pid, loads):
    live = [r for r in rows if not r.unavailable]
    for rnd in range(runs):
        loads.append(load_average())
        order = live[rnd % len(live):] + live[:rnd % len(live)]
        for op in OPS:
            for row in order:
                key_op = CEILING_OP if row.ceiling else op
                if op not in row.ops or (row.ceiling and op != next(iter(OPS))):
                    continue        # the ceiling's command is the same for every operation
                try:
                    if row.prepare:
                        row.prepare()
                    for temp in ("cold", "warm"):
                        p = one_pass(row, op, files, server_pid)
                        row.passes.setdefault((key_op, temp), []).append(p)
                        log(f"round {rnd + 1}/{runs} {op:5} {row.name}, {temp}: "
                            f"{p.seconds:.3f} s" + ("" if p.ok else f" FAILED: {p.note}"))
                except RuntimeError as e:   # a mount that did not come up
                    for temp in ("cold", "warm"):
                        row.passes.setdefault((key_op, temp), []).append(
                            Pass(0.0, False, str(e)))
                    log(f"round {rnd + 1}/{runs} {row.name}: {e}")
                finally:
                    if row.finish:
                        row.finish()


# -- checks after the timed runs (untimed) -------------------------------------------------


def debug_pass(row, cache, argv, log_file, cold, keep_stdout=False):
    """argv through rwsplit with RWSPLIT_LOG=debug (every process of the pass appends to
    log_file; cold: from an empty cache_dir): (Pass, Counter of "METHOD status")."""
    if cold:
        empty_dir(cache)
    log_file.unlink(missing_ok=True)
    env = dict(row.env, RWSPLIT_LOG="debug", RWSPLIT_LOG_FILE=str(log_file))
    p = timed(row.wrap(argv), env, keep_stdout=keep_stdout)
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    return p, Counter(f"{'LIST' if m == 'GET' and path.endswith('/') else m} {status}"
                      for m, path, status in REQUEST_RE.findall(text))


def rwsplit_checks(row, cache, listed, work):
    """Through rwsplit, untimed: `ls -l` cold and warm and `find -printf` (names, sizes,
    mtimes) against boto3's listing, and the requests of a cold pass of each operation.
    Returns ([(what, problem or "")], {op: (Counter, Pass)})."""
    want = {n: size for n, (size, _) in listed.items()}
    checks, requests = [], {}
    log_file = work / "debug.log"
    for temp in ("cold", "warm"):
        p, counts = debug_pass(row, cache, ["ls", "-l", ROUTE], log_file, temp == "cold",
                               keep_stdout=True)
        got = {f[-1]: int(f[4]) for f in (line.split() for line in p.stdout.splitlines())
               if len(f) >= 9}      # skips the "total N" line
        checks.append((f"`ls -l {ROUTE}`, {temp}: names and sizes", diff(got, want, p)))
        if temp == "cold":
            requests["ls -l"] = (counts, p)   # the same requests as the timed `ls -l`
    p, _ = debug_pass(row, cache, ["find", ROUTE, "-type", "f", "-printf", r"%P %s %T@\n"],
                      log_file, False, keep_stdout=True)
    got, skew = {}, []
    for line in p.stdout.splitlines():
        name, size, mtime = line.rsplit(" ", 2)
        got[name] = int(size)
        if name in listed:
            skew.append(abs(float(mtime) - listed[name][1]))
    problem = diff(got, want, p)
    off = sum(1 for d in skew if d >= 1.0)
    if off:
        problem += ("; " if problem else "") + f"{off} mtimes differ from LastModified by ≥ 1 s"
    checks.append((f"`find {ROUTE} -type f -printf '%P %s %T@'`, warm: names, sizes, mtimes "
                   f"(largest difference from LastModified {fmt(max(skew, default=None))} s)",
                   problem))
    for op in OPS:
        if op not in requests:
            p, counts = debug_pass(row, cache, OPS[op](row.root), log_file, True)
            requests[op] = (counts, p)
    return checks, requests


def diff(got, want, p):
    if not p.ok:
        return f"failed: {p.note}"
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(n for n in set(got) & set(want) if got[n] != want[n])
    if not (missing or extra or wrong):
        return ""
    return (f"{len(got)} entries: {len(missing)} missing (e.g. {missing[:3]}), {len(extra)} "
            f"extra (e.g. {extra[:3]}), {len(wrong)} with the wrong size (e.g. {wrong[:3]})")


# -- report --------------------------------------------------------------------------------


def med(row, op, temp):
    return stats(ok_seconds(row.passes.get((CEILING_OP if row.ceiling else op, temp), [])))[0]


def op_table(rows, op, rw):
    """One operation: every row's cold and warm seconds, and each as a ratio to rwsplit."""
    L = [f"### `{op}`\n",
         "| row | cold median s | cold min–max | warm median s | warm min–max | ok passes | "
         "cold: row / rwsplit | warm: row / rwsplit |",
         "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.unavailable:
            L.append(f"| {r.name} | unavailable: {r.unavailable} | | | | | | |")
            continue
        if op not in r.ops:
            L.append(f"| {r.name} | not run (`--fuse-ops`) | | | | | | |")
            continue
        key = CEILING_OP if r.ceiling else op
        cells = []
        for temp in ("cold", "warm"):
            m, lo, hi = stats(ok_seconds(r.passes.get((key, temp), [])))
            cells += [fmt(m), f"{fmt(lo)}–{fmt(hi)}"]
        all_p = r.passes.get((key, "cold"), []) + r.passes.get((key, "warm"), [])
        n_ok = sum(1 for p in all_p if p.ok)
        L.append(f"| {r.name} | " + " | ".join(cells) + f" | {n_ok}/{len(all_p)} | "
                 f"{ratio(med(r, op, 'cold'), med(rw, op, 'cold'))} | "
                 f"{ratio(med(r, op, 'warm'), med(rw, op, 'warm'))} |")
    return L + [""]


def summary_lines(rows, rw, ceiling, n):
    """Per operation, rwsplit against the ceiling and the best alternative, in words."""
    L = ["### In short\n",
         f"Files per second = {n} entries / median seconds. *row / rwsplit* above 1 means "
         "rwsplit is faster.\n",
         "| operation | rwsplit cold s | files/s | vs server LIST (LIST / rwsplit) | best "
         "FUSE cold | rwsplit warm s | vs local disk warm (local / rwsplit) | vs tmpfs warm |",
         "|---|---|---|---|---|---|---|---|"]
    fuse = [r for r in rows if r.daemon_pid and not r.unavailable]
    local = next(r for r in rows if r.name == "local disk")
    tmpfs = next(r for r in rows if r.name.startswith("tmpfs"))
    for op in OPS:
        c = med(rw, op, "cold")
        best = min(((med(r, op, "cold"), r.name) for r in fuse if med(r, op, "cold")),
                   default=(None, "none"))
        L.append(f"| `{op}` | {fmt(c)} | {n / c:.0f} | "
                 f"{ratio(med(ceiling, op, 'cold'), c)} | {best[1]}: {fmt(best[0])} s "
                 f"({ratio(best[0], c)}) | {fmt(med(rw, op, 'warm'))} | "
                 f"{ratio(med(local, op, 'warm'), med(rw, op, 'warm'))} | "
                 f"{ratio(med(tmpfs, op, 'warm'), med(rw, op, 'warm'))} |"
                 if c else f"| `{op}` | – | | | | | | |")
    return L + [""]


def cpu_table(rows):
    L = ["### CPU per pass (median seconds)\n",
         "*client*: the timed command's process tree, plus the FUSE daemon for FUSE rows and "
         "the fetch agent for rwsplit's; "
         "*MinIO*: the server; *other*: the rest of the machine (kernel threads and anything "
         "else running on this shared machine: check it before trusting a slow pass).\n",
         "| row | operation | cold client | cold MinIO | cold other | warm client | "
         "warm MinIO | warm other |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for op in ([CEILING_OP] if r.ceiling else OPS):
            cells = []
            for temp in ("cold", "warm"):
                ok = [p for p in r.passes.get((op, temp), []) if p.ok]
                cells += [f"{statistics.median(getattr(p, a) for p in ok):.2f}" if ok else "–"
                          for a in ("client_cpu", "server_cpu", "other_cpu")]
            if any(c != "–" for c in cells):
                L.append(f"| {r.name} | {op} | " + " | ".join(cells) + " |")
    return L + [""]


def write_report(out, cmdline, facts, loads, rows, rw, checks, requests, conf_text, n,
                 elapsed):
    ceiling = next(r for r in rows if r.ceiling)
    L = ["## Metadata: `ls -l`, `find` and stat of one directory of "
         f"{n} tiny objects\n",
         f"Generated by `{cmdline}` in {elapsed:.0f} s. bench/README.md says what each row "
         "means and how cold is defined. Seconds per operation (lower is better), median of "
         "the successful passes.\n",
         "| fact | value |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in facts]
    L.append(f"| load average before each round | {'; '.join(loads)} |")
    L.append("")
    L += summary_lines(rows, rw, ceiling, n)
    for op in OPS:
        L += op_table(rows, op, rw)
    L.append("The *server LIST (mc ls)* row is the same command in every table: one full "
             "listing of the prefix by mc, the least any store-backed row must wait for.\n")
    L += cpu_table(rows)
    L.append("### Checks\n")
    L.append("Every `stat` pass printed the data set's entry count and total bytes (a pass "
             "that did not is a failed pass below). Through rwsplit, after the timed runs, "
             "against boto3 `list_objects_v2`:\n")
    L += [f"- {what}: {'**' + problem + '**' if problem else 'OK'}" for what, problem in checks]
    L.append("")
    L.append("Requests rwsplit sent for one cold pass of each operation (`RWSPLIT_LOG=debug`, "
             f"untimed; {n} keys take {-(-n // 1000)} LIST page(s) of 1000):\n")
    L.append("| operation | requests (method status: count) | pass |\n|---|---|---|")
    for op, (counts, p) in requests.items():
        L.append(f"| `{op}` | {', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))} | "
                 f"{'ok' if p.ok else 'FAILED: ' + p.note} |")
    L.append("")
    failures = [(r.name, op, temp, i + 1, p.note) for r in rows
                for (op, temp), ps in r.passes.items() for i, p in enumerate(ps) if not p.ok]
    L.append("### Failed passes\n")
    L += ([f"- {name}, {op} {temp}, run {i}: {note}" for name, op, temp, i, note in failures]
          if failures else ["None."])
    L.append("")
    L.append("### Exact commands\n")
    L.append("The operations, ROOT being each row's directory; every row runs them as "
             "`env VARS… OPERATION` (VARS as below, none for most rows), so that only the "
             "operation's own processes are preloaded:\n")
    L += [f"- `{op}`: `{shlex.join(OPS[op]('ROOT'))}`" for op in OPS]
    L.append("\nPer row:\n")
    for r in rows:
        if r.ceiling:
            L.append(f"- **{r.name}**: `{r.command(CEILING_OP)} > /dev/null`")
            continue
        how = (f"mounted with `{r.shown_cmd}`; " if r.daemon_pid else "") + f"ROOT = `{r.root}`"
        env = env_line(r.preload)
        L.append(f"- **{r.name}**: {how}" + (f"; VARS `{env}`" if env else ""))
    L.append("\nrclone's remote `bench:` is defined by `RCLONE_CONFIG_BENCH_*` environment "
             "variables (type s3, provider Minio, the server's endpoint and keys; "
             "bench/common.py rclone_mount).\n")
    L.append(f"rwsplit config:\n\n```ini\n{conf_text.strip()}\n```\n")
    L.append("### Every pass (seconds; x = failed)\n")
    L.append("| row | operation | cold | warm |\n|---|---|---|---|")
    for r in rows:
        for op in ([CEILING_OP] if r.ceiling else OPS):
            cells = [", ".join(f"{p.seconds:.3f}" + ("" if p.ok else "x")
                               for p in r.passes.get((op, temp), [])) for temp in ("cold", "warm")]
            if any(cells):
                L.append(f"| {r.name} | {op} | {cells[0]} | {cells[1]} |")
    L.append("")
    replace_section(out, SECTION, "\n".join(L))


def chart_json(rows, n, cmdline):
    groups = [{"label": f"{op}, {temp}",
               "values": {r.name: med(r, op, temp) for r in rows
                          if not r.unavailable and med(r, op, temp) is not None}}
              for op in OPS for temp in ("cold", "warm")]
    save_json(SECTION, {"title": f"Metadata: one directory of {n} tiny objects",
                        "unit": "s", "lower_is_better": True, "groups": groups,
                        "command": cmdline,
                        "passes": {r.name: {f"{op}, {temp}": [p.seconds for p in ps if p.ok]
                                            for (op, temp), ps in r.passes.items()}
                                   for r in rows}})


# -- main ----------------------------------------------------------------------------------


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10000, help="objects (default 10000)")
    ap.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--build", type=Path, default=Path("build"),
                    help="build directory holding lib/librwsplit.so (default build)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-fuse", action="store_true", help="leave out s3fs and rclone")
    ap.add_argument("--fuse-ops", default="ls -l",
                    help="comma-separated operations the s3fs and rclone rows run (default "
                         "'ls -l'; 'ls -l,find,stat' for all: a cold pass there costs 10-40 s "
                         "at 10,000 files)")
    ap.add_argument("--quick", action="store_true", help="--files 1000 --runs 1")
    a = ap.parse_args(argv)
    if a.quick:
        a.files, a.runs = 1000, 1
    a.fuse_ops = tuple(op.strip() for op in a.fuse_ops.split(",") if op.strip())
    if not set(a.fuse_ops) <= set(OPS):
        ap.error(f"--fuse-ops: choose from {', '.join(OPS)}")
    if not 10 <= a.files <= 99999 or not 1 <= a.runs <= 20:
        ap.error("--files must be 10..99999 and --runs 1..20")
    a.build = a.build if a.build.is_absolute() else REPO / a.build
    return a


def machine_facts(lib, dirs, n, drop_ok):
    return host_facts() + tool_facts() + [
        ("rwsplit", lib_fact(lib)),
        ("data set", f"{n} objects of {SIZE_MIN}–{SIZE_MAX} random bytes in one directory, "
                     f"s3://{BUCKET}/{PREFIX}f00000.bin …"),
        ("drop_caches", "works (sync; echo 3 > /proc/sys/vm/drop_caches before every cold "
                        "pass)" if drop_ok else "does NOT work here: cold passes start with "
                        "the page cache as it is"),
    ] + [(what, f"{d} ({fs_type(d)})") for what, d in dirs] + [
        ("MinIO data", "a temp dir on the root filesystem (harness default)"),
        ("load average at start", load_average()),
    ]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    cmdline = ".tools/venv/bin/python bench/metadata.py " + shlex.join(argv)
    lib = args.build / "lib" / "librwsplit.so"
    for need in (lib, args.build / "lib" / "librwsplit-s3.so", VENV_PY, MC_BIN):
        if not need.exists():
            sys.exit(f"{need} is missing: run `make` (and scripts/deps.sh) first")
    if os.path.exists(ROUTE.rsplit("/", 1)[0]):
        sys.exit(f"{ROUTE.rsplit('/', 1)[0]} exists on disk: the route must be a path that "
                 "does not")
    signal.signal(signal.SIGTERM, _raise_exit)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rwbench-meta-", dir="/var/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="rwbench-meta-", dir="/dev/shm"))
    server = mc = None
    try:
        files = make_dataset(args.files, args.seed)
        write_local(files, work / "local")
        write_local(files, shm / "files")
        server = MinioServer().start()
        mc = Mc(server)
        s3 = server.boto3_client()
        log(f"uploading {args.files} objects")
        upload(s3, files)
        drop_ok = drop_caches()
        rw, conf, cache = rwsplit_row(server, lib, work, shm)
        rows = [ceiling_row(mc), rw]
        if not args.no_fuse:
            rows += fuse_rows(server, work, args.fuse_ops)
        rows += local_rows(work / "local", shm / "files", server)
        facts = machine_facts(lib, [("local disk dir", work / "local"),
                                    ("tmpfs dir", shm / "files"),
                                    ("rwsplit cache_dir", cache)], args.files, drop_ok)
        loads = []
        measure(rows, args.runs, files, server.pid, loads)
        log("checks through rwsplit")
        listed = bucket_listing(s3)
        checks, requests = rwsplit_checks(rw, cache, listed, work)
        facts.append(("load average at end", load_average()))
        write_report(args.out, cmdline, facts, loads, rows, rw, checks, requests,
                     conf.read_text(), args.files, time.monotonic() - started)
        chart_json(rows, args.files, cmdline)
        log(f"wrote the {SECTION} section of {args.out}")
        failed = sum(1 for r in rows for ps in r.passes.values() for p in ps if not p.ok)
        failed += sum(1 for _, problem in checks if problem)
        if failed:
            log(f"{failed} passes or checks FAILED: see the report")
        return 1 if failed else 0
    finally:
        release(server, mc, shm, work)


if __name__ == "__main__":
    sys.exit(main())
