"""Running a program under test: its exit status, output and time, and the lines rwsplit
printed among its stderr."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from dataclasses import dataclass

LOCALE = "C.UTF-8"  # programs under test run with LC_ALL set to it, output comparable
RWSPLIT_LINE_RE = re.compile(rb"^rwsplit\[\d+\]")
RWSPLIT_PROBLEM_RE = re.compile(rb"^rwsplit\[\d+\] (error|warn)", re.MULTILINE)


@dataclass
class Result:
    args: list
    returncode: int
    stdout: bytes
    stderr: bytes
    elapsed: float

    def describe(self):
        err = self.stderr[-4000:].decode(errors="replace")
        return (f"{self.args!r} -> {self.returncode} in {self.elapsed:.1f}s\n"
                f"stdout: {self.stdout[:800]!r}\nstderr: {err}")

    def other_stderr(self):
        """stderr without the lines rwsplit printed."""
        return b"".join(line for line in self.stderr.splitlines(keepends=True)
                        if not RWSPLIT_LINE_RE.match(line))

    def rwsplit_problems(self):
        return [line for line in self.stderr.splitlines() if RWSPLIT_PROBLEM_RE.match(line)]


def preload_env(server, lib, conf, log="info", extra=None):
    """The environment of a program run with rwsplit preloaded: server's credentials, lib as
    LD_PRELOAD, conf as RWSPLIT_CONFIG, log level log, a fixed locale, then extra."""
    env = server.child_env({
        # `make asan`: the sanitizer's runtime must come first in an uninstrumented program.
        "LD_PRELOAD": " ".join(filter(None, [os.environ.get("RWSPLIT_SANITIZER_PRELOAD"),
                                             str(lib)])),
        "RWSPLIT_CONFIG": str(conf),
        "RWSPLIT_LOG": log,
        "LC_ALL": LOCALE,
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.pop("RWSPLIT_LOG_FILE", None)
    env.pop("RWSPLIT_DISABLE", None)
    env.update(extra or {})
    return env


def run(args, env, timeout, stdin_data=None, result=Result):
    """Runs args in a new process group (a timeout kills the whole group); returns a result
    (an instance of `result`, a Result subclass)."""
    args = [str(a) for a in args]
    start = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE if stdin_data is not None
                            else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"{args!r} still running after {timeout} s (killed)\n"
                             f"stdout: {out[:600]!r}\nstderr: {err[-3000:]!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
    return result(args, proc.returncode, out, err, time.monotonic() - start)


def py(script, *args):
    """The command running a Python script with this interpreter."""
    return [sys.executable, str(script), *map(str, args)]


def expect_ok(res):
    """res, after asserting it exited 0 and rwsplit logged no warning or error."""
    assert res.returncode == 0, res.describe()
    assert not res.rwsplit_problems(), res.describe()
    return res


def fetch_agents(cache_dir):
    """{pid: argv} of the running rwsplit fetch agents (`rwsplit agent ... --socket PATH`)
    whose socket lies in cache_dir."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if len(argv) > 5 and argv[0].endswith("/rwsplit") and argv[1] == "agent" and \
                any(a.startswith(f"{cache_dir}/") for a in argv):
            found[int(d.name)] = argv
    return found


def tree_agents(path, name_prefix=False):
    """pids of the running tree agents (`rwsplit agent ... --tree T`) whose T is path or lies
    below it (name_prefix: whose T starts with path), this process excluded."""
    tail = "[^ ]*" if name_prefix else "(/[^ ]*)?"
    pattern = f"--tree {re.escape(str(path))}{tail}( |$)"
    res = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True,
                         timeout=10)
    return [int(p) for p in res.stdout.split() if int(p) != os.getpid()]


def kill_tree_agents(path, sig=signal.SIGKILL, timeout=10.0, name_prefix=False):
    """Sends sig to every tree agent of path (see tree_agents), then SIGKILL to those still
    there after timeout; waits (bounded) until all are gone and returns their pids. Raises
    AssertionError if one outlives the SIGKILL by timeout."""
    pids = tree_agents(path, name_prefix)

    def signal_all(s):
        for pid in pids:
            try:
                os.kill(pid, s)
            except ProcessLookupError:
                pass

    def wait_gone():
        deadline = time.monotonic() + timeout
        while any(Path(f"/proc/{p}").exists() for p in pids):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    signal_all(sig)
    if not wait_gone() and sig != signal.SIGKILL:
        signal_all(signal.SIGKILL)
        if wait_gone():
            return pids
    alive = [p for p in pids if Path(f"/proc/{p}").exists()]
    assert not alive, f"tree agents of {path} still running: {alive}"
    return pids
