"""The fetch agent (reader/rd_agent.h): preloaded processes send their GETs and LISTs to one
`rwsplit agent` per cache directory, config and credentials, which they start themselves.

Every test uploads its objects with mc into a fresh bucket, reads them through a read route
with real programs under LD_PRELOAD, and compares the bytes with the local originals. The
agent is found by its command line (`rwsplit agent ... --socket CACHE_DIR/...`). Nothing here
waits without a bound: every loop gives up after a few seconds.
"""

import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness import proc
from tests.harness.proc import expect_ok, fetch_agents as agents, py

KiB = 1 << 10
MiB = 1 << 20
TIMEOUT = 120

# name -> size: small objects fetched whole, one above whole_object_max (filled in the
# background with ranged GETs), and names that need escaping.
FILES = {f"d{i % 3}/f{i:03d}.bin": 20 * KiB + 997 * i for i in range(60)}
FILES.update({"big/lazy-6m.bin": 6 * MiB, "odd/ünï cødé %41+=.bin": 3333,
              "odd/with space.bin": 1})


def wait_for(cond, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.fixture(scope="module")
def data(mc, tmp_path_factory):
    """A bucket holding FILES under data/, and the local originals."""
    from tests.harness.minio import random_bucket_name
    root = tmp_path_factory.mktemp("agent-data")
    for rel, size in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
    bucket = random_bucket_name()
    mc.mb(bucket)
    mc.run("cp", "--recursive", "--quiet", f"{root}/", mc.target(f"{bucket}/data/"),
           timeout=300)
    try:
        yield bucket, root
    finally:
        mc.rb(bucket)


@pytest.fixture
def route(minio, build, data, tmp_path):
    """route(**global_options, store=dict(...), prefetch=...) -> (conf, local, cache_dir)."""
    build.require(build.lib)
    made = []

    def make(prefetch="off", bucket=None, glob=None, store=None):
        tag = secrets.token_hex(5)
        local = f"/mnt/rwsplit-agent-{tag}/data"
        cache = Path(f"/dev/shm/rwsplit-agent-{tag}")
        made.append(cache)
        head = "[global]\n" + f"cache_dir = {cache}\n" + "".join(
            f"{k} = {v}\n" for k, v in (glob or {}).items())
        conf = tmp_path / f"rw-{tag}.conf"
        conf.write_text(head + "\n" + minio.config_text(
            routes=[("read", local, f"s3://{bucket or data[0]}/data/",
                     {"prefetch": prefetch, "whole_object_max": "4MiB"})], **(store or {})))
        return conf, local, cache

    yield make
    for cache in made:
        shutil.rmtree(cache, ignore_errors=True)
        wait_for(lambda c=cache: not agents(c), 5)
        for pid in agents(cache):
            os.kill(pid, signal.SIGKILL)


def env_for(minio, build, conf, log="info", extra=None, lib=None):
    return proc.preload_env(minio, lib or build.lib, conf, log, extra)


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sums(out):
    """sha256sum output -> {basename-relative path: digest}."""
    res = {}
    for line in out.decode().splitlines():
        digest, name = line.split("  ", 1)
        res[name] = digest
    return res


def hash_script(path, after_each="", at_end=""):
    """Writes a Python script that prints "SHA256  NAME" for each NAME (argv[2:]) under the
    root argv[1] as it reads it, running after_each after every file and at_end last."""
    path.write_text(
        "import hashlib, sys, time\n"
        "for n in sys.argv[2:]:\n"
        "    with open(f'{sys.argv[1]}/{n}', 'rb') as f:\n"
        "        print(hashlib.sha256(f.read()).hexdigest() + '  ' + n, flush=True)\n"
        + (f"    {after_each}\n" if after_each else "") + at_end)
    return path


def digests(lines):
    """The script's lines -> {name: digest}."""
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in lines}


def check_all(res, local, root, names):
    got = sums(expect_ok(res).stdout)
    assert got == {f"{local}/{n}": sha(root / n) for n in names}, res.describe()


def test_one_agent_serves_many_processes(minio, build, data, route):
    """Forty short processes, four at a time, fetch through a single agent; the bytes are the
    originals; a process started after them finds the agent still there."""
    conf, local, cache = route()
    env = env_for(minio, build, conf, "debug")
    names = sorted(n for n in FILES if n.startswith("d"))
    res = proc.run(["bash", "-c", f"cd {local} && printf '%s\\n' {' '.join(names)} | "
                    "xargs -P4 -n 2 sha256sum"], env, TIMEOUT)
    got = sums(expect_ok(res).stdout)
    assert got == {n: sha(data[1] / n) for n in names}, res.describe()
    log = res.stderr.decode(errors="replace")
    assert log.count("fetch agent started") == 1, log[-3000:]
    assert "fetches by itself" not in log, log[-3000:]
    running = agents(cache)
    assert len(running) == 1, running
    pid, argv = next(iter(running.items()))
    assert argv[argv.index("-c") + 1] == str(conf)
    # The agent is nobody's child here: it detached (its parent is not the test).
    assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) != \
        os.getpid()
    res = proc.run(["cat", f"{local}/odd/with space.bin"], env, TIMEOUT)
    assert expect_ok(res).stdout == (data[1] / "odd/with space.bin").read_bytes()
    assert "fetch agent started" not in res.stderr.decode(errors="replace")
    assert list(agents(cache)) == [pid]


def test_odd_names_and_lazy_object_through_agent(minio, build, data, route):
    """Escaped names, a directory listing and an object filled by ranged GETs in the
    background all come through the agent byte for byte."""
    conf, local, cache = route(prefetch="listing")
    env = env_for(minio, build, conf)
    names = ["odd/ünï cødé %41+=.bin", "odd/with space.bin", "big/lazy-6m.bin"]
    res = proc.run(["sha256sum", *[f"{local}/{n}" for n in names]], env, TIMEOUT)
    check_all(res, local, data[1], names)
    ls = expect_ok(proc.run(["ls", f"{local}/odd"], env, TIMEOUT))
    assert ls.stdout.decode().splitlines() == sorted(os.listdir(data[1] / "odd"))
    assert agents(cache)


def test_agent_off_fetches_in_process(minio, build, data, route):
    conf, local, cache = route(glob={"agent": "off"})
    env = env_for(minio, build, conf, "debug")
    names = ["d0/f000.bin", "d1/f001.bin"]
    res = proc.run(["sha256sum", *[f"{local}/{n}" for n in names]], env, TIMEOUT)
    check_all(res, local, data[1], names)
    assert "fetch agent" not in res.stderr.decode(errors="replace")
    assert not agents(cache)


def test_agent_killed_while_reading(minio, build, data, route, tmp_path):
    """SIGKILL of the agent in the middle of a process's reads loses nothing: that process
    fetches the rest itself or through a new agent, and a later process starts a new one."""
    conf, local, cache = route()
    env = env_for(minio, build, conf, "debug")
    names = sorted(n for n in FILES if n.startswith("d"))
    script = hash_script(tmp_path / "slow.py", after_each="time.sleep(0.05)")
    p = subprocess.Popen(py(script, local, *names), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert wait_for(lambda: agents(cache), 20), "no agent started"
        time.sleep(0.5)
        killed = set(agents(cache))
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        out, err = p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err.decode(errors="replace")[-3000:]
    assert digests(out.decode().splitlines()) == {n: sha(data[1] / n) for n in names}
    assert b"warn" not in err and b"error" not in err, err.decode(errors="replace")[-3000:]
    res = proc.run(["cat", f"{local}/odd/with space.bin"], env, TIMEOUT)
    assert expect_ok(res).stdout == (data[1] / "odd/with space.bin").read_bytes()
    # A new agent: started by the reader after the kill, or by this cat.
    assert agents(cache) and not set(agents(cache)) & killed


def test_agent_exits_after_idle_time(minio, build, data, route):
    conf, local, cache = route(glob={"agent_idle": "1s"})
    env = env_for(minio, build, conf)
    expect_ok(proc.run(["cat", f"{local}/d0/f000.bin"], env, TIMEOUT))
    assert agents(cache)
    assert wait_for(lambda: not agents(cache), 10), "the agent did not exit when idle"
    assert not list(cache.glob("u*/agent-*.sock"))


def test_agent_exits_when_cache_dir_is_removed(minio, build, data, route):
    conf, local, cache = route()
    env = env_for(minio, build, conf)
    expect_ok(proc.run(["cat", f"{local}/d0/f000.bin"], env, TIMEOUT))
    assert agents(cache)
    shutil.rmtree(cache)
    assert wait_for(lambda: not agents(cache), 5), "the agent outlived its cache dir"


def test_agent_holds_no_pipe_of_the_program_open(minio, build, data, route):
    """A shell pipeline whose reader waits for EOF finishes when the preloaded writer exits,
    though the agent that writer started lives on."""
    conf, local, cache = route()
    env = env_for(minio, build, conf)
    start = time.monotonic()
    res = proc.run(["bash", "-c", f"cat {local}/d0/f000.bin | wc -c"], env, 30)
    assert expect_ok(res).stdout.strip() == str(FILES["d0/f000.bin"]).encode()
    assert time.monotonic() - start < 20
    assert agents(cache)


def test_credentials_are_never_shared(minio, build, data, route):
    """A process with wrong keys gets EACCES with the store's reason, and the agent it
    started is not used by a process with the right keys (nor the other way round)."""
    conf, local, cache = route()
    wrong = env_for(minio, build, conf, extra={"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    right = env_for(minio, build, conf)
    probe = ("import errno, sys\n"
             "try:\n"
             "    print(len(open(sys.argv[1], 'rb').read()))\n"
             "except OSError as e:\n"
             "    print(errno.errorcode[e.errno])\n")
    bad = proc.run(["python3", "-c", probe, f"{local}/d0/f000.bin"], wrong, TIMEOUT)
    assert bad.returncode == 0 and bad.stdout.strip() == b"EACCES", bad.describe()
    assert b"SignatureDoesNotMatch" in bad.stderr or b"403" in bad.stderr, bad.describe()
    good = proc.run(["python3", "-c", probe, f"{local}/d1/f001.bin"], right, TIMEOUT)
    assert good.stdout.strip() == str(FILES["d1/f001.bin"]).encode(), good.describe()
    assert len(agents(cache)) == 2
    bad = proc.run(["python3", "-c", probe, f"{local}/d2/f002.bin"], wrong, TIMEOUT)
    assert bad.stdout.strip() == b"EACCES", bad.describe()


def test_missing_bucket_is_enoent_through_agent(minio, build, data, route):
    conf, local, cache = route(bucket="rwsplit-no-such-bucket-" + secrets.token_hex(3))
    env = env_for(minio, build, conf)
    res = proc.run(["ls", local], env, TIMEOUT)
    assert res.returncode != 0
    assert b"No such file or directory" in res.stderr, res.describe()
    assert b"NoSuchBucket" in res.stderr, res.describe()


def test_without_the_command_beside_the_library(minio, build, data, route, tmp_path):
    """A library copied alone (no rwsplit command next to it) fetches in-process and says
    so once."""
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    for name in ("librwsplit.so", "librwsplit-s3.so"):
        shutil.copy(build.lib.parent / name, lib_dir / name)
    conf, local, cache = route()
    env = env_for(minio, build, conf, "info", lib=lib_dir / "librwsplit.so")
    names = ["d0/f000.bin", "big/lazy-6m.bin"]
    res = proc.run(["sha256sum", *[f"{local}/{n}" for n in names]], env, TIMEOUT)
    check_all(res, local, data[1], names)
    log = res.stderr.decode(errors="replace")
    assert log.count("no rwsplit command beside the library") == 1, log
    assert not agents(cache)


def test_forked_workers_share_the_agent(minio, build, data, route, tmp_path):
    """multiprocessing with fork after the parent has used the agent: the children do not
    share the parent's connection (each reply reaches the process that asked)."""
    conf, local, cache = route()
    env = env_for(minio, build, conf)
    names = sorted(n for n in FILES if n.startswith("d"))
    script = tmp_path / "pool.py"
    script.write_text(
        "import hashlib, multiprocessing as mp, sys, threading\n"
        "root = sys.argv[1]\n"
        "def digest(n):\n"
        "    with open(f'{root}/{n}', 'rb') as f:\n"
        "        return hashlib.sha256(f.read()).hexdigest() + '  ' + n\n"
        "if __name__ == '__main__':\n"
        "    names = sys.argv[2:]\n"
        "    print(digest(names[0]))\n"
        "    t = [threading.Thread(target=digest, args=(n,)) for n in names[1:5]]\n"
        "    [x.start() for x in t]; [x.join() for x in t]\n"
        "    with mp.get_context('fork').Pool(4) as p:\n"
        "        for line in p.map(digest, names[1:], chunksize=1):\n"
        "            print(line)\n")
    res = proc.run(py(script, local, *names), env, TIMEOUT)
    assert digests(expect_ok(res).stdout.decode().splitlines()) == \
        {n: sha(data[1] / n) for n in names}
    assert not res.rwsplit_problems(), res.describe()
    assert len(agents(cache)) == 1


def test_fetch_outlives_the_process_that_asked(build, restartable_minio, tmp_path):
    """A process lists a directory, the server then hangs (SIGSTOP), the process opens a file
    (a FETCH that now hangs in the agent) and is killed. When the server answers again, the
    agent publishes the object whole (nothing stays in tmp/: a download the agent made into
    a file of the dead process would), and a later reader of the directory finds it
    cached. Prefetches handed to the agent are FETCHes too and outlive their process the
    same way."""
    from tests.harness.minio import Mc, random_bucket_name
    server = restartable_minio
    mc = Mc(server)
    bucket = random_bucket_name()
    mc.mb(bucket)
    src = tmp_path / "src"
    src.mkdir()
    names = [f"f{i:02d}.bin" for i in range(8)]
    for n in names:
        (src / n).write_bytes(os.urandom(300 * KiB))
    mc.run("cp", "--recursive", "--quiet", f"{src}/", mc.target(f"{bucket}/d/"), timeout=120)
    tag = secrets.token_hex(5)
    local, cache = f"/mnt/rwsplit-agent-{tag}/d", Path(f"/dev/shm/rwsplit-agent-{tag}")
    conf = tmp_path / "rw.conf"
    conf.write_text(f"[global]\ncache_dir = {cache}\n\n" + server.config_text(
        routes=[("read", local, f"s3://{bucket}/d/", {"prefetch": "listing"})],
        stall_timeout="60s"))
    env = proc.preload_env(server, build.lib, conf, "info")
    # It lists the directory, then waits for the word to read while the server hangs.
    p = subprocess.Popen(["python3", "-c",
                          "import os, sys\n"
                          "print(len(os.listdir(os.path.dirname(sys.argv[1]))), flush=True)\n"
                          "sys.stdin.readline()\n"
                          "for p in sys.argv[1:]:\n"
                          "    open(p, 'rb').read()\n", f"{local}/{names[0]}",
                          f"{local}/{names[1]}"],
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert p.stdout.readline() == f"{len(names)}\n".encode()
        server.pause()
        try:
            p.stdin.write(b"go\n")
            p.stdin.flush()
            # Its first open is a FETCH that now hangs in the agent: the file sits in tmp/.
            assert wait_for(lambda: list(cache.glob("u*/*/tmp/*")), 10), "no fetch in flight"
            p.kill()
            p.wait()
        finally:
            server.resume()
        assert wait_for(lambda: not list(cache.glob("u*/*/tmp/*")), 30), \
            list(cache.glob("u*/*/tmp/*"))
        cached = [o for o in cache.glob("u*/*/obj/*") if not o.name.endswith(".lock")]
        assert cached and all(o.stat().st_size == 300 * KiB for o in cached), cached
        res = expect_ok(proc.run(["cat", *[f"{local}/{n}" for n in names]], env, TIMEOUT))
        assert res.stdout == b"".join((src / n).read_bytes() for n in names)
        summary = res.stderr.decode(errors="replace")
        m = re.search(r"(\d+) files opened \((\d+) from cache\)", summary)
        assert m and int(m.group(1)) == len(names) and int(m.group(2)) >= len(cached), summary
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(cache, ignore_errors=True)
        wait_for(lambda: not agents(cache), 5)
        mc.close()


def test_config_edited_after_start_is_not_served_by_an_agent(minio, build, data, route):
    """A process that loaded the config before it was edited (a Kubernetes ConfigMap update)
    does not hand its requests, which name routes by number, to an agent reading the new
    text: the agent refuses to start and the process fetches by itself, correctly."""
    conf, local, cache = route()
    env = env_for(minio, build, conf)
    p = subprocess.Popen(["python3", "-c",
                          "import sys\n"
                          "print('ready', flush=True)\n"
                          "sys.stdin.readline()\n"
                          "sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())\n",
                          f"{local}/d1/f001.bin"],
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert p.stdout.readline() == b"ready\n"   # the library has loaded the config
        conf.write_text("; edited\n" + conf.read_text())
        out, err = p.communicate(b"go\n", timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err.decode(errors="replace")
    assert out == (data[1] / "d1/f001.bin").read_bytes()
    assert b"the config file changed since this process read it" in err, err
    assert not agents(cache)
    # A process started now uses (and starts) an agent for the new text.
    res = expect_ok(proc.run(["cat", f"{local}/d2/f002.bin"], env, TIMEOUT))
    assert res.stdout == (data[1] / "d2/f002.bin").read_bytes() and agents(cache)


def test_busy_process_hands_off_to_itself(minio, build, data, route, tmp_path):
    """After agent_handoff requests a process fetches by itself (a long-lived reader has
    paid for the client's start-up many times over): the reads stay right, and its threads
    let go of their connections, so the agent can go idle."""
    conf, local, cache = route(glob={"agent_handoff": 5, "agent_idle": "1s"})
    env = env_for(minio, build, conf, "debug")
    names = sorted(n for n in FILES if n.startswith("d"))[:20]
    script = hash_script(tmp_path / "many.py",
                         at_end="print('done', flush=True)\nsys.stdin.readline()\n")
    p = subprocess.Popen(py(script, local, *names), env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        lines = [p.stdout.readline().decode().rstrip("\n") for _ in names]
        assert p.stdout.readline() == b"done\n"
        # The process lives on, connection-free: the agent exits after agent_idle.
        assert wait_for(lambda: not agents(cache), 15), "the agent kept a connection"
        out, err = p.communicate(b"\n", timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err.decode(errors="replace")[-3000:]
    assert digests(lines) == {n: sha(data[1] / n) for n in names}
    log = err.decode(errors="replace")
    assert log.count("5 requests from this process; it fetches by itself") == 1, log[-3000:]
    assert "fetch agent started" in log
