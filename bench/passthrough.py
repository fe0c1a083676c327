#!/usr/bin/env python3
"""Pass-through benchmark (issue 6, workload 6): what rwsplit costs on I/O it does NOT route.
DESIGN.md, "Performance targets": pass-through overhead on non-routed I/O ≤ 2%.

    .tools/venv/bin/python bench/passthrough.py [--iterations 200000] [--runs 7] \
        [--numpy-runs 20] [--out bench/RESULTS.md] [--build build] [--quick]

bench/ofrc.c (built here with `gcc -O2`) runs a tight loop over 1000 local files of 4 KiB in a
temp dir on the root filesystem and prints nanoseconds per iteration, both of CPU time of the
process (user + system) and of the wall clock; the loop alone is timed (after one untimed pass
over every file), so the library's start-up is not in it:

| loop | one iteration |
|---|---|
| open/fstat/read/close, absolute paths | `open(O_RDONLY)` + `fstat` + `read(4 KiB)` + `close`, cycling over the files (--iterations) |
| the same, relative paths | the same loop run in the files' directory with relative names: the library must resolve them against the cwd before it can tell they are not routed |
| stat, absolute paths | `stat(path)` (--iterations) |
| opendir/readdir/closedir | one whole listing of the 1000-entry directory (--iterations / 400) |

Each loop runs in three variants, interleaved (the order rotates every round), --runs rounds:

| variant | environment |
|---|---|
| plain | no preload |
| rwsplit active | `LD_PRELOAD=DIR/lib/librwsplit.so RWSPLIT_CONFIG=…`: a config with one read route (`/mnt/rwbench-pt/read`) and one write route (`/mnt/rwbench-pt/write`), neither of which the loop touches. The store's endpoint is a closed loopback port: nothing is routed, so nothing may touch the network |
| rwsplit disabled | the same plus `RWSPLIT_DISABLE=1` (pure pass-through) |

Start-up: `.tools/venv/bin/python -c 'import numpy'` (a few hundred files opened and stat'ed
by the interpreter and numpy), --numpy-runs times in each variant, interleaved; wall time of
the whole process.

The overhead is the active variant's median over plain's median, minus 1, in CPU time (on a
shared 2-core machine the wall clock also counts the time other processes held the CPU; both
tables are in the report); the report also gives the median of the per-round ratios (each
round's active run over the same round's plain run), which drifts less. The target is met
when the overhead is ≤ 2%.
When a loop misses it, `perf record -g` runs on that loop under the active library and the
report lists the share of samples in librwsplit.so and its top symbols.

Checks: before timing, the active variant must refuse `touch /mnt/rwbench-pt/read/x` with
EROFS (proof the routes are loaded) and the disabled one must pass it through (ENOENT); every
loop's check sum (bytes and sizes seen) must be the same in every variant; a pass that exits
non-zero is listed and left out. After timing, `strace -f -c` counts the system calls of one
iteration of every loop in every variant (runs of k and 2k iterations, the difference over k),
so the report shows whether the library adds any. Writes its own section of --out
(`passthrough`) and bench/results/passthrough.json (each variant's median relative to plain,
per loop).

Run time: about 1 minute with the defaults on an otherwise idle 2-core machine (2.7 minutes
measured at load average 20-40). Needs gcc (and strace, perf for the extras); no root, no
server.
"""

import argparse
import os
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

from bench.common import (VENV_PY, build_tool, env_line, fmt, fs_type,  # noqa: E402
                          host_facts, lib_fact, load_average, log, run_text, save_json, timed)
from bench.results_md import replace_section  # noqa: E402
from tests.harness.minio import child_env  # noqa: E402

SECTION = "passthrough"
NFILES = 1000
FILE_SIZE = 4096
READ_ROUTE, WRITE_ROUTE = "/mnt/rwbench-pt/read", "/mnt/rwbench-pt/write"
TARGET = 0.02                       # DESIGN.md: pass-through overhead ≤ 2%
READDIR_DIVISOR = 400               # a listing of 1000 entries costs ~400 stat calls
OUT_RE = re.compile(r" ns_per_iter=([\d.]+) cpu_ns_per_iter=([\d.]+) check=(-?\d+)")
PERF_TOP = 12


@dataclass
class Case:
    """One loop of bench/ofrc.c: cpu[variant] and wall[variant] list ns/iteration per round
    (None: the run failed)."""
    name: str
    mode: str
    dir_arg: str                    # what ofrc gets as DIR
    cwd: Path
    iterations: int
    cpu: dict = field(default_factory=dict)
    wall: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)

    def argv(self, ofrc):
        return [str(ofrc), self.mode, self.dir_arg, str(NFILES), str(self.iterations)]


def variants(lib, conf):
    """(name, the environment variables it adds), as the report shows them."""
    active = {"LD_PRELOAD": str(lib), "RWSPLIT_CONFIG": str(conf)}
    return [("plain", {}), ("rwsplit active", active),
            ("rwsplit disabled", dict(active, RWSPLIT_DISABLE="1"))]


def with_env(shown, argv):
    """argv started by env(1) with the variant's variables: only the measured program gets
    the library, not a timing wrapper (GNU time, perf) around it."""
    return ["env", *(f"{k}={v}" for k, v in shown.items()), *map(str, argv)]


def full_env(shown):
    """The caller's environment without any rwsplit variable, plus shown."""
    base = {"LD_PRELOAD": None, "RWSPLIT_CONFIG": None, "RWSPLIT_DISABLE": None,
            "RWSPLIT_LOG": None, "RWSPLIT_LOG_FILE": None}
    return child_env(dict(base, **shown))


# -- set-up ---------------------------------------------------------------------------------


def make_files(files):
    files.mkdir()
    block = os.urandom(FILE_SIZE)
    for i in range(NFILES):
        (files / f"f{i:05d}").write_bytes(block[i % FILE_SIZE:] + block[:i % FILE_SIZE])


def write_config(work, shm):
    """One read and one write route that the loops never touch; the endpoint is port 9 on
    loopback (nothing listens): a routed call would fail, a pass-through one never asks."""
    conf = work / "rwsplit.conf"
    conf.write_text(f"""[global]
cache_dir = {shm / "cache"}

[store]
endpoint = http://127.0.0.1:9
region = us-east-1
addressing = path

[read {READ_ROUTE}]
url = s3://rwbench-pt/read/
prefetch = off

[write {WRITE_ROUTE}]
url = s3://rwbench-pt/write/
spool = {work / "spool"}
""")
    return conf


def activity_checks(vs):
    """The active library must own the read route (EROFS); disabled and plain must not."""
    problems, seen = [], []
    want = {"plain": "No such file or directory", "rwsplit active": "Read-only file system",
            "rwsplit disabled": "No such file or directory"}
    for name, shown in vs:
        p = subprocess.run(["touch", f"{READ_ROUTE}/x"], env=full_env(shown),
                           capture_output=True, text=True, timeout=30)
        err = p.stderr.strip()
        seen.append((name, err))
        if p.returncode == 0 or want[name] not in err:
            problems.append(f"{name}: `touch {READ_ROUTE}/x` said {err!r}, expected "
                            f"{want[name]!r}")
    return seen, problems


# -- timing ---------------------------------------------------------------------------------


def run_loop(case, ofrc, vname, shown):
    p = timed(with_env(shown, case.argv(ofrc)), full_env({}), cwd=case.cwd, keep_stdout=True)
    m = OUT_RE.search(p.stdout)
    if not p.ok or not m:
        case.failures.append((vname, p.note or f"unexpected output {p.stdout[:200]!r}"))
        case.wall.setdefault(vname, []).append(None)
        case.cpu.setdefault(vname, []).append(None)
        return
    case.wall.setdefault(vname, []).append(float(m.group(1)))
    case.cpu.setdefault(vname, []).append(float(m.group(2)))
    case.checks.setdefault(vname, set()).add(int(m.group(3)))


def measure(cases, vs, ofrc, runs, numpy_runs, loads):
    """Rounds of every loop in every variant, then the numpy start-ups; orders rotate."""
    for rnd in range(runs):
        loads.append(load_average())
        order = vs[rnd % len(vs):] + vs[:rnd % len(vs)]
        for case in cases:
            for vname, shown in order:
                run_loop(case, ofrc, vname, shown)
        log(f"round {rnd + 1}/{runs}, CPU ns: " + "; ".join(
            f"{c.mode} " + "/".join(fmt(c.cpu[v][-1], 0) for v, _ in vs) for c in cases))
    startup = {v: [] for v, _ in vs}     # (wall s, CPU s) of each successful run
    fails = []
    argv = [str(VENV_PY), "-c", "import numpy"]
    for i in range(numpy_runs):
        for vname, shown in vs[i % len(vs):] + vs[:i % len(vs)]:
            p = timed(with_env(shown, argv), full_env({}))
            if p.ok:
                startup[vname].append((p.seconds, p.client_cpu))
            else:
                fails.append((vname, p.note))
    log("numpy start-up medians: " + "; ".join(
        f"{v} {fmt(statistics.median(w for w, _ in s)) if s else '–'} s"
        for v, s in startup.items()))
    return startup, fails


def overhead(values, base):
    """(median(values) / median(base) - 1, the per-round ratios - 1) or (None, [])."""
    pairs = [v / b - 1 for v, b in zip(values, base) if v is not None and b is not None]
    if not pairs:
        return None, []
    ok_v = [v for v in values if v is not None]
    ok_b = [b for b in base if b is not None]
    return statistics.median(ok_v) / statistics.median(ok_b) - 1, pairs


def paired_cell(pairs):
    """The median per-round overhead and its range: '+1.2% (−3.0%…+4.1%)'."""
    if not pairs:
        return "–"
    return f"{pct(statistics.median(pairs))} ({pct(min(pairs))}…{pct(max(pairs))})"


def syscalls_per_iteration(case, ofrc, shown, work):
    """System calls one iteration makes: strace -f -c of the loop with k and 2k iterations
    (start-up and the untimed pass cancel out), or None when strace fails."""
    k = 1000 if case.mode != "readdir" else 20
    totals = []
    for n in (k, 2 * k):
        out = work / "strace.txt"
        argv = case.argv(ofrc)[:-1] + [str(n)]
        setenv = [a for key, v in shown.items() for a in ("-E", f"{key}={v}")]
        p = subprocess.run(["strace", "-f", "-c", "-o", str(out), *setenv, *argv],
                           env=full_env({}), cwd=case.cwd, capture_output=True, timeout=120)
        m = re.search(r"^100\.00\s+\S+\s+\S+\s+(\d+)", out.read_text() if out.exists()
                      else "", re.MULTILINE)
        if p.returncode != 0 or not m:
            return None
        totals.append(int(m.group(1)))
    return (totals[1] - totals[0]) / k


def perf_profile(case, ofrc, shown, work):
    """perf record -g of the loop under the active library: (share of samples per DSO,
    top symbols of librwsplit.so), or a note saying why not."""
    if not shutil.which("perf"):
        return "perf is not installed", ""
    data = work / "perf.data"
    p = subprocess.run(["perf", "record", "-g", "-o", str(data), "--",
                        *with_env(shown, case.argv(ofrc))], env=full_env({}), cwd=case.cwd,
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        return f"perf record failed: {p.stderr.strip()[:300]}", ""
    report = ["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none"]
    dsos = run_text(report + ["--sort", "dso"])
    syms = run_text(report + ["--sort", "sym", "--dsos", "librwsplit.so"])
    return table_lines(dsos, 8), table_lines(syms, PERF_TOP)


def table_lines(text, n):
    """The first n rows of a perf report table (no comments, no blank lines)."""
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return "\n".join(rows[:n])


# -- report ---------------------------------------------------------------------------------


def pct(x):
    return "–" if x is None else f"{x * 100:+.1f}%"


def verdict(x):
    if x is None:
        return "no data"
    if x <= TARGET:
        return f"**met** ({pct(x)} ≤ 2%)"
    return f"**missed** by {(x - TARGET) * 100:.1f} percentage points ({pct(x)} > 2%)"


def loop_table(cases, vs, attr, verdicts):
    """A table of the loops: each variant's ns/iteration and the overheads."""
    L = ["| loop | iterations | " + " | ".join(f"{v} ns" for v, _ in vs) +
         " | active overhead | paired | disabled overhead |" +
         (" target ≤ 2% |" if verdicts else ""),
         "|---|---|" + "---|" * (len(vs) + 3 + verdicts)]
    for c in cases:
        d = getattr(c, attr)
        cells = []
        for v, _ in vs:
            ok = [x for x in d.get(v, []) if x is not None]
            cells.append(f"{statistics.median(ok):.0f} ({min(ok):.0f}–{max(ok):.0f})"
                         if ok else "–")
        act, paired = overhead(d.get("rwsplit active", []), d.get("plain", []))
        dis, _ = overhead(d.get("rwsplit disabled", []), d.get("plain", []))
        L.append(f"| {c.name} | {c.iterations} | " + " | ".join(cells) +
                 f" | {pct(act)} | {paired_cell(paired)} | {pct(dis)} |" +
                 (f" {verdict(act)} |" if verdicts else ""))
    return L + [""]


def startup_medians(runs):
    """(median wall s, median CPU s) of [(wall, cpu)], or Nones."""
    if not runs:
        return None, None
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def syscall_lines(syscalls):
    """What strace counted per iteration, and whether the active library added any."""
    if not syscalls:
        return ["- System calls per iteration: not counted (strace is not installed).", ""]
    L = ["System calls per iteration (`strace -f -c` of the loop with k and 2k iterations, "
         "the difference over k; k = 1000, 20 for readdir):\n"]
    for name, per in syscalls.items():
        cells = ", ".join(f"{v} {'?' if n is None else f'{n:g}'}" for v, n in per.items())
        plain, act = per.get("plain"), per.get("rwsplit active")
        extra = (f" — **the active library adds {act - plain:g} per iteration**"
                 if plain is not None and act is not None and act > plain else "")
        L.append(f"- {name}: {cells}{extra}")
    return L + [""]


def write_report(out, cmdline, facts, loads, cases, vs, startup, numpy_fails, activity,
                 profiles, syscalls, conf_text, ofrc_cmd, elapsed):
    L = ["## Pass-through: the cost of rwsplit on I/O it does not route\n",
         f"Generated by `{cmdline}` in {elapsed:.0f} s. bench/README.md says what each loop "
         "and variant is. DESIGN.md target: *pass-through overhead on non-routed I/O ≤ 2%*.\n",
         "| fact | value |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in facts]
    L.append(f"| load average before each round | {'; '.join(loads)} |\n")
    L.append("### Loops (bench/ofrc.c): CPU nanoseconds per iteration\n")
    L.append("CPU time of the process during the loop (user + system, "
             "`CLOCK_PROCESS_CPUTIME_ID`): on this shared machine the wall clock also counts "
             "the time other processes held the CPU, CPU time mostly does not. The verdict "
             "uses it; the wall-clock table follows. Median (min–max) of the successful runs. "
             "*Overhead* = the variant's median over plain's − 1; *paired* = the median (and "
             "range) over rounds of (that round's run / that round's plain run) − 1: the range "
             "shows how much this machine's noise moves one comparison.\n")
    L += loop_table(cases, vs, "cpu", verdicts=True)
    L.append("Wall clock (`CLOCK_MONOTONIC`), the same runs:\n")
    L += loop_table(cases, vs, "wall", verdicts=False)
    L.append("### Start-up: `.tools/venv/bin/python -c 'import numpy'`\n")
    L.append("Wall time of the whole process (and CPU seconds of it, user + system), "
             "medians.\n")
    L.append("| variant | wall s | wall min–max s | CPU s | runs | wall overhead | "
             "CPU overhead |\n|---|---|---|---|---|---|---|")
    base_w, base_c = startup_medians(startup["plain"])
    for v, runs in startup.items():
        w, c = startup_medians(runs)
        walls = [x for x, _ in runs]
        L.append(f"| {v} | {fmt(w)} | {fmt(min(walls, default=None))}–"
                 f"{fmt(max(walls, default=None))} | {fmt(c)} | {len(runs)} | "
                 f"{pct(w / base_w - 1) if w and base_w else '–'} | "
                 f"{pct(c / base_c - 1) if c and base_c else '–'} |")
    w, _ = startup_medians(startup["rwsplit active"])
    L.append(f"\nStart-up (wall) against the target: "
             f"{verdict(w / base_w - 1 if w and base_w else None)} (the target speaks of "
             "I/O; this includes loading the library and parsing its config once per "
             "process).\n")
    L.append("### Profile\n")
    if profiles:
        for name, (dsos, syms) in profiles.items():
            L.append(f"`perf record -g` of *{name}* under the active library (the loop missed "
                     "the target). Samples per DSO (self time):\n")
            L.append(f"```\n{dsos}\n```\n")
            share = re.search(r"([\d.]+)%\s+librwsplit\.so", dsos)
            L.append(f"librwsplit.so's own code takes {share.group(1) + '%' if share else 'none'} "
                     "of this loop's samples (self time; libc helpers it calls, such as strlen "
                     "or strcspn, count under libc.so.6; the system calls it adds, if any, are "
                     "under Checks). An overhead measured well above that share comes mostly "
                     "from this machine's noise, not from the library's work: compare the "
                     "paired range above.\n")
            L.append("Top symbols in librwsplit.so (self time, share of all samples):\n")
            L.append(f"```\n{syms or '(no samples in librwsplit.so)'}\n```\n")
    else:
        L.append("Not taken: every loop met the target.\n")
    L.append("### Checks\n")
    L += syscall_lines(syscalls)
    L += [f"- `touch {READ_ROUTE}/x`, {name}: {err!r}" for name, err in activity[0]]
    L += [f"- **{p}**" for p in activity[1]]
    for c in cases:
        sums = {v: sorted(s) for v, s in c.checks.items()}
        same = len({tuple(s) for s in sums.values()}) == 1 and all(len(s) == 1
                                                                  for s in sums.values())
        L.append(f"- {c.name}: check sum " + (f"{next(iter(sums.values()))[0]} in every run "
                                             "of every variant" if same else
                                             f"**differs**: {sums}"))
    L.append("")
    fails = [(c.name, v, note) for c in cases for v, note in c.failures] + \
        [("numpy start-up", v, note) for v, note in numpy_fails]
    L.append("### Failed runs\n")
    L += [f"- {n}, {v}: {note}" for n, v, note in fails] if fails else ["None."]
    L.append("")
    L.append("### Exact commands\n")
    L.append(f"Built with `{ofrc_cmd}`. Every command runs as `env VARS… COMMAND` (so that "
             "only the measured program is preloaded, not a timing wrapper), VARS per "
             "variant: " + "; ".join(f"*{v}*: `{env_line(shown) or '(none)'}`"
                                     for v, shown in vs) + ".\n")
    for c in cases:
        L.append(f"- {c.name}: `cd {c.cwd} && ofrc {shlex.join(c.argv('ofrc')[1:])}`")
    L.append("- start-up: `.tools/venv/bin/python -c 'import numpy'`")
    L.append(f"\nrwsplit config:\n\n```ini\n{conf_text.strip()}\n```\n")
    L.append("### Every run (CPU ns per iteration / wall ns per iteration; x = failed)\n")
    L.append("| loop | " + " | ".join(v for v, _ in vs) + " |\n|---|" + "---|" * len(vs))
    for c in cases:
        L.append(f"| {c.name} | " + " | ".join(", ".join(
            "x" if x is None else f"{x:.0f}/{y:.0f}"
            for x, y in zip(c.cpu.get(v, []), c.wall.get(v, []))) for v, _ in vs) + " |")
    L.append("")
    replace_section(out, SECTION, "\n".join(L))


def chart_json(cases, vs, startup, cmdline):
    groups = []
    for c in cases:
        base = [x for x in c.cpu.get("plain", []) if x is not None]
        vals = {}
        for v, _ in vs:
            ok = [x for x in c.cpu.get(v, []) if x is not None]
            if ok and base:
                vals[v] = statistics.median(ok) / statistics.median(base)
        groups.append({"label": c.name, "values": vals})
    base, _ = startup_medians(startup["plain"])
    if base:
        groups.append({"label": "python -c 'import numpy' (wall)",
                       "values": {v: startup_medians(s)[0] / base
                                  for v, s in startup.items() if s}})
    save_json(SECTION, {
        "title": "Pass-through: time relative to no preload (1.00 = no overhead; loops: "
                 "CPU time, numpy: wall)",
        "unit": "× plain", "lower_is_better": True, "groups": groups, "command": cmdline,
        "cpu_ns_per_iteration": {c.name: c.cpu for c in cases},
        "wall_ns_per_iteration": {c.name: c.wall for c in cases},
        "numpy_startup_s": startup})


# -- main -----------------------------------------------------------------------------------


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=200_000,
                    help="iterations of the read and stat loops (default 200000)")
    ap.add_argument("--runs", type=int, default=7, help="rounds (default 7)")
    ap.add_argument("--numpy-runs", type=int, default=20,
                    help="numpy start-ups per variant (default 20)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument("--build", type=Path, default=Path("build"),
                    help="build directory holding lib/librwsplit.so (default build)")
    ap.add_argument("--quick", action="store_true",
                    help="--iterations 20000 --runs 3 --numpy-runs 3")
    a = ap.parse_args(argv)
    if a.quick:
        a.iterations, a.runs, a.numpy_runs = 20_000, 3, 3
    if not 1000 <= a.iterations <= 10**8 or not 1 <= a.runs <= 50 \
            or not 1 <= a.numpy_runs <= 200:
        ap.error("--iterations must be 1000..1e8, --runs 1..50, --numpy-runs 1..200")
    a.build = a.build if a.build.is_absolute() else REPO / a.build
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    cmdline = ".tools/venv/bin/python bench/passthrough.py " + shlex.join(argv)
    lib = args.build / "lib" / "librwsplit.so"
    for need in (lib, VENV_PY):
        if not need.exists():
            sys.exit(f"{need} is missing: run `make` (and scripts/deps.sh) first")
    if not shutil.which("gcc"):
        sys.exit("gcc is missing: it builds bench/ofrc.c")
    if os.path.exists(READ_ROUTE.rsplit("/", 1)[0]):
        sys.exit(f"{READ_ROUTE.rsplit('/', 1)[0]} exists on disk: the routes must be paths "
                 "that do not")
    signal.signal(signal.SIGTERM, _raise_exit)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rwbench-pt-", dir="/var/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="rwbench-pt-", dir="/dev/shm"))
    try:
        ofrc = build_tool(work, "ofrc")
        files = work / "files"
        make_files(files)
        (work / "spool").mkdir()
        conf = write_config(work, shm)
        vs = variants(lib, conf)
        activity = activity_checks(vs)
        it = args.iterations
        cases = [
            Case("open/fstat/read/close, absolute paths", "read", str(files), work, it),
            Case("open/fstat/read/close, relative paths", "read", ".", files, it),
            Case("stat, absolute paths", "stat", str(files), work, it),
            Case(f"opendir/readdir/closedir ({NFILES} entries)", "readdir", str(files), work,
                 max(1, it // READDIR_DIVISOR)),
        ]
        facts = host_facts() + [
            ("rwsplit", lib_fact(lib)),
            ("gcc", run_text(["gcc", "--version"]).splitlines()[0]),
            ("files", f"{NFILES} × {FILE_SIZE} B in {files} ({fs_type(files)})"),
            ("load average at start", load_average()),
        ]
        loads = []
        startup, numpy_fails = measure(cases, vs, ofrc, args.runs, args.numpy_runs, loads)
        active = dict(vs)["rwsplit active"]
        profiles = {}
        for c in cases:
            act, _ = overhead(c.cpu.get("rwsplit active", []), c.cpu.get("plain", []))
            if act is not None and act > TARGET:
                log(f"{c.name}: overhead {pct(act)} > 2%: perf record")
                profiles[c.name] = perf_profile(c, ofrc, active, work)
        syscalls = ({c.name: {v: syscalls_per_iteration(c, ofrc, shown, work)
                              for v, shown in vs} for c in cases}
                    if shutil.which("strace") else {})
        facts.append(("load average at end", load_average()))
        write_report(args.out, cmdline, facts, loads, cases, vs, startup, numpy_fails,
                     activity, profiles, syscalls, conf.read_text(),
                     "gcc -O2 -Wall -Wextra -o ofrc bench/ofrc.c", time.monotonic() - started)
        chart_json(cases, vs, startup, cmdline)
        log(f"wrote the {SECTION} section of {args.out}")
        failed = activity[1] or any(c.failures for c in cases) or numpy_fails or any(
            len({tuple(sorted(s)) for s in c.checks.values()}) != 1 for c in cases)
        return 1 if failed else 0
    finally:
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
