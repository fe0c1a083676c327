"""Read routes on a node shared with another user (issue 15): the cache and the fetch agent.

root reads through a read route; the second user, nobody (uid 65534), has prepared the
node beforehand as an attacker would: cache_dir as a symbolic link into its own directory,
cache_dir or root's u0 below it made by itself (with planted "cached objects"), or a fake
fetch agent listening at the socket name root's processes use. Each time root's reader must
either refuse with a message naming the path, or read the real bytes (checked against what
boto3 put), and nothing of root's may appear in the other user's directories. A last test
shows that the agent's socket name, which every user can read in its command line, is keyed
with the user's random key (cache_dir/u0/agent.key, 0600), not only with the credentials.

Every cache_dir is /dev/shm/rwsplit-rt-<random>; the teardown kills its agents and removes it.
"""

import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import proc
from tests.harness.proc import fetch_agents

OTHER = 65534
DATA = {"a.txt": b"the real bytes\n" * 100, "d/b.bin": os.urandom(70_000),
        "late.txt": b"read last\n"}
FAKE = b"planted by another user\n"


class Reader:
    """One read route /mnt/rwsplit-rt-<tag>/data -> s3://bucket/data/ with its own cache_dir;
    prefetch off, so that what is cached is only what a test read."""

    def __init__(self, minio, build, bucket, tmp_path):
        tag = secrets.token_hex(5)
        self.local = f"/mnt/rwsplit-rt-{tag}/data"
        self.cache = Path(f"/dev/shm/rwsplit-rt-{tag}")
        self.conf = tmp_path / f"rt-{tag}.conf"
        self.conf.write_text(f"[global]\ncache_dir = {self.cache}\n\n" + minio.config_text(
            routes=[("read", self.local, f"s3://{bucket}/data/", {"prefetch": "off"})]))
        self.minio, self.build = minio, build

    def cat(self, rel, log="info"):
        env = proc.preload_env(self.minio, self.build.lib, self.conf, log)
        return proc.run(["cat", f"{self.local}/{rel}"], env, 60)

    def agents(self):
        return fetch_agents(self.cache)

    def kill_agents(self):
        for pid in self.agents():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self.agents():
            assert time.monotonic() < deadline, f"agents of {self.cache} still running"
            time.sleep(0.05)

    def socket_path(self):
        """The --socket argument of the one running agent."""
        agents = list(self.agents().values())
        assert len(agents) == 1, agents
        argv = agents[0]
        return argv[argv.index("--socket") + 1]


@pytest.fixture
def reader(minio, build, boto, bucket, tmp_path):
    build.require(build.lib)
    for rel, data in DATA.items():
        boto.put_object(Bucket=bucket, Key=f"data/{rel}", Body=data)
    made = []

    def make():
        r = Reader(minio, build, bucket, tmp_path)
        made.append(r)
        return r
    yield make
    for r in made:
        r.kill_agents()
        if r.cache.is_symlink():
            r.cache.unlink()
        shutil.rmtree(r.cache, ignore_errors=True)


def assert_refused(res, *words):
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0, res.describe()
    assert FAKE not in res.stdout, res.describe()
    assert "refusing cache_dir" in err, res.describe()
    for w in words:
        assert w in err, f"{w!r} not in the message\n{res.describe()}"


def listing(d):
    return sorted(p.name for p in Path(d).iterdir())


def test_reads_work_and_the_cache_is_private(reader):
    r = reader()
    res = proc.expect_ok(r.cat("a.txt"))
    assert res.stdout == DATA["a.txt"]
    assert stat.S_IMODE(r.cache.stat().st_mode) == 0o1777  # shared by the node's users
    user = r.cache / "u0"
    assert stat.S_IMODE(user.stat().st_mode) == 0o700 and user.stat().st_uid == 0
    key = user / "agent.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_size == 32


def test_cache_dir_is_a_symlink_to_the_other_users_dir(reader, other_dir):
    r = reader()
    evil = other_dir("evil-cache")
    os.symlink(evil, r.cache)
    res = r.cat("a.txt")
    assert_refused(res, "symbolic link", str(r.cache))
    assert listing(evil) == []
    assert not r.agents()


def test_cache_dir_made_by_the_other_user(reader):
    r = reader()
    r.cache.mkdir()
    os.chown(r.cache, OTHER, OTHER)
    os.chmod(r.cache, 0o1777)
    res = r.cat("a.txt")
    assert_refused(res, "another user", str(r.cache))
    assert listing(r.cache) == []


def test_user_dir_made_by_the_other_user_with_planted_objects(reader):
    """A root-made shared cache_dir (01777, as rwsplit makes it), in which the other user
    made u0 and filled it like a cache: refused; no planted byte is read."""
    r = reader()
    r.cache.mkdir()
    os.chmod(r.cache, 0o1777)
    planted = r.cache / "u0"
    planted.mkdir()
    for sub in ("tree", "obj", "lists", "tmp"):
        (planted / sub).mkdir()
    (planted / "tree" / "a.txt").write_bytes(FAKE)
    for p in [planted, *planted.rglob("*")]:
        os.chown(p, OTHER, OTHER)
    os.chmod(planted, 0o777)
    res = r.cat("a.txt")
    assert_refused(res, "owned by another user", str(planted))
    assert not r.agents()


def test_fake_agent_of_the_other_user_is_refused(reader, other_dir):
    """A socket listened on by the other user sits at the name root's processes connect to
    (made here by a process that binds as root and drops to the other user before listen(),
    whose credentials SO_PEERCRED then reports): the client refuses it and reads the real
    bytes by itself; the fake gets no request."""
    r = reader()
    proc.expect_ok(r.cat("a.txt"))
    sock = r.socket_path()
    r.kill_agents()
    os.unlink(sock)
    theirs = other_dir("fake-agent")
    script = theirs / "fake.py"
    script.write_text(
        "import os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
        "s.bind(sys.argv[1])\n"
        f"os.setgroups([]); os.setresgid({OTHER}, {OTHER}, {OTHER})\n"
        f"os.setresuid({OTHER}, {OTHER}, {OTHER})\n"
        "s.listen(8)\n"
        "print('listening', flush=True)\n"
        "got = 0\n"
        "s.settimeout(20)\n"
        "try:\n"
        "    while True:\n"
        "        c, _ = s.accept(); c.settimeout(2)\n"
        "        try:\n"
        "            got += len(c.recv(65536))\n"
        "        except OSError:\n"
        "            pass\n"
        "        open(sys.argv[2], 'w').write(str(got))\n"
        "except OSError:\n"
        "    pass\n")
    fake = subprocess.Popen(["python3", str(script), sock, str(theirs / "got")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert fake.stdout.readline() == b"listening\n"
        res = r.cat("d/b.bin", log="debug")
        err = res.stderr.decode(errors="replace")
        assert res.returncode == 0 and res.stdout == DATA["d/b.bin"], res.describe()
        assert "served by another user; refusing it" in err, res.describe()
        time.sleep(0.5)
        got = (theirs / "got").read_text() if (theirs / "got").exists() else "0"
        assert got == "0", f"the fake agent received {got} bytes"
    finally:
        fake.kill()
        fake.wait(timeout=10)


def test_socket_name_is_keyed_with_the_users_random_key(reader):
    """Same config, same credentials: the same agent while agent.key stays; a new key (as on
    another node, or for a guesser who does not have it) gives another socket name."""
    r = reader()
    proc.expect_ok(r.cat("a.txt"))
    first = r.socket_path()
    pid = list(r.agents())[0]
    proc.expect_ok(r.cat("d/b.bin"))
    assert list(r.agents()) == [pid] and r.socket_path() == first
    r.kill_agents()
    key = r.cache / "u0" / "agent.key"
    key.unlink()
    proc.expect_ok(r.cat("late.txt"))   # not cached yet: needs the agent
    second = r.socket_path()
    assert second != first, first
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # the key is in no command line
    hexkey = key.read_bytes().hex()
    for argv in r.agents().values():
        assert hexkey not in " ".join(argv)


def test_first_use_by_a_vfork_child_makes_the_cache_private(reader):
    """subprocess.run(cwd=<route>) as a process's first use of the route: the chdir runs in
    a vfork child, which makes the shadow directory itself; cache_dir and u0 still get their
    modes, and the program run there reads the route."""
    r = reader()
    env = proc.preload_env(r.minio, r.build.lib, r.conf, "info")
    script = ("import subprocess, sys\n"
              "res = subprocess.run(['cat', 'a.txt'], cwd=sys.argv[1], capture_output=True)\n"
              "sys.stdout.buffer.write(res.stdout); sys.exit(res.returncode)\n")
    res = proc.expect_ok(proc.run([sys.executable, "-c", script, r.local], env, 60))
    assert res.stdout == DATA["a.txt"], res.describe()
    assert stat.S_IMODE(r.cache.stat().st_mode) == 0o1777
    assert stat.S_IMODE((r.cache / "u0").stat().st_mode) == 0o700
