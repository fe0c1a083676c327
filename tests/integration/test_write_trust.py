"""Write routes on a node shared with another user (issue 14's trust rules, issue 15's
attacks): the tree, its parents, the spool and the agent's socket are checked, and what a
second user (uid 65534, "nobody") planted is refused with an error naming the path. Nothing
of the root user's data ever lands in a directory the other user controls, and the store is
checked with boto3.

Each case runs the same writer (`sh -c 'echo secret > OUT/f'`, preloaded) after the second
user has prepared the node; the accepted cases check that the object arrives.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_write_tree import (PREFIX, bucket_objects, make_wtree,  # noqa: F401
                                               wt)

OTHER = 65534               # nobody/nogroup: the second user of the node
SECRET = b"secret\n"
UNIX_TABLE = "/proc/net/unix"


def as_other(args, timeout=10):
    """Runs args as the second user; returns the CompletedProcess."""
    return subprocess.run(args, user=OTHER, group=OTHER, extra_groups=[], capture_output=True,
                          timeout=timeout)


def write_secret(wt, rel="f"):
    return wt.run(["sh", "-c", f"echo secret > '{wt.path(rel)}'"])


def assert_refused(res, wt, *words):
    """The writer failed, said why (naming the route), and the store got nothing."""
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0, res.describe()
    assert "refusing" in err and wt.out in err, res.describe()
    for w in words:
        assert w in err, f"{w!r} not in the message\n{res.describe()}"
    assert bucket_objects(wt.boto, wt.bucket) == {}


def assert_lands(wt, rel="f", timeout=20):
    key = PREFIX + rel
    deadline = time.monotonic() + timeout
    while key not in bucket_objects(wt.boto, wt.bucket):
        assert time.monotonic() < deadline, f"{key} not in the bucket\n{wt.diagnostics()}"
        time.sleep(0.1)
    assert wt.boto.get_object(Bucket=wt.bucket, Key=key)["Body"].read() == SECRET


def listing(d):
    return sorted(p.name for p in Path(d).iterdir())


def test_route_parent_is_a_symlink_to_the_other_users_dir(wt, other_dir):
    """/mnt/<base> -> the other user's directory: refused (ELOOP), nothing made there."""
    evil = other_dir("evil")
    os.symlink(evil, wt.base)
    try:
        res = write_secret(wt)
        assert_refused(res, wt, "symbolic link")
        assert listing(evil) == []
    finally:
        os.unlink(wt.base)


def test_route_dir_owned_by_the_other_user(wt):
    """OUT made beforehand by the other user (0777): refused, the secret is not written."""
    os.mkdir(wt.base)
    os.mkdir(wt.out)
    os.chown(wt.out, OTHER, OTHER)
    os.chmod(wt.out, 0o777)
    res = write_secret(wt)
    assert_refused(res, wt, "owned by another user")
    assert listing(wt.out) == []


def test_route_parent_world_writable_needs_the_sticky_bit(wt):
    """A parent anyone may write (0777) lets the other user rename OUT away: refused;
    with the sticky bit (like /tmp) the same route works."""
    os.mkdir(wt.base)
    os.chmod(wt.base, 0o777)
    res = write_secret(wt)
    assert_refused(res, wt, "not sticky")
    assert listing(wt.base) in ([], ["out"])
    assert not (Path(wt.out) / "f").exists()

    os.chmod(wt.base, 0o1777)
    # a new process: the refusal is remembered per process only
    res = write_secret(wt)
    assert res.returncode == 0, res.describe()
    assert_lands(wt)


def test_route_path_the_user_cannot_make(wt, other_dir):
    """The other user (not root) runs a writer on a route whose parent only root may write
    (/mnt/<base>, 0755): the call fails with EACCES, the message names the route and says
    to make the directory beforehand (an emptyDir in a pod); nothing is made."""
    os.mkdir(wt.base, 0o755)
    mine = other_dir("conf")
    conf = mine / "rwsplit.conf"           # readable by the other user
    shutil.copy(wt.conf, conf)
    os.chmod(conf, 0o644)
    env = wt.env({"RWSPLIT_CONFIG": str(conf), "HOME": str(mine)})
    res = subprocess.run(["sh", "-c", f"echo secret > '{wt.path('f')}'"], user=OTHER,
                         group=OTHER, extra_groups=[], env=env, capture_output=True,
                         timeout=20)
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0, err
    assert f"write route {wt.out}: refusing it" in err and "Permission denied" in err, err
    assert "mount an emptyDir there" in err, err
    assert listing(wt.base) == []
    assert bucket_objects(wt.boto, wt.bucket) == {}


def test_spool_owned_by_the_other_user(make_wtree, bucket, other_dir):
    """A spool the other user made: the agent's journal, log and socket lock would live
    there. Refused with the path named; the file stays in the tree (nothing lost) and
    nothing is created in the other user's directory."""
    spool = other_dir("evil-spool")
    wt = make_wtree(bucket, spool=spool)
    res = write_secret(wt)
    err = res.stderr.decode(errors="replace")
    assert res.returncode == 0, res.describe()  # the write itself is local and kept
    assert str(spool) in err and "owned by another user" in err, res.describe()
    assert (Path(wt.out) / "f").read_bytes() == SECRET
    assert listing(spool) == []
    assert bucket_objects(wt.boto, wt.bucket) == {}


def tree_sockets():
    """Abstract socket names of tree agents on this node."""
    names = set()
    with open(UNIX_TABLE) as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[7].startswith("@rwsplit-tree-"):
                names.add(parts[7][1:])
    return names


def test_agent_socket_squatted_by_the_other_user(wt, other_dir):
    """The other user binds the abstract name of root's agent first. The writer checks the
    peer (SO_PEERCRED), refuses it without sending a byte, keeps the file in the tree, and
    the real data reaches the store once the squatter is gone."""
    before = tree_sockets()
    res = write_secret(wt, "first")
    assert res.returncode == 0, res.describe()
    new = tree_sockets() - before
    assert len(new) == 1, (new, wt.diagnostics())
    name = new.pop()
    assert f"-u{os.geteuid()}-" in name
    wt.kill_agents()

    got = other_dir("squatter") / "got"
    squatter = subprocess.Popen(
        ["python3", "-c", SQUATTER, name, str(got)], user=OTHER, group=OTHER, extra_groups=[],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert squatter.stdout.readline().strip() == b"listening", squatter.stderr.read()
        res = write_secret(wt, "second")
        err = res.stderr.decode(errors="replace")
        assert res.returncode == 0, res.describe()
        assert "belongs to another user" in err, res.describe()
        assert (Path(wt.out) / "second").read_bytes() == SECRET
    finally:
        squatter.kill()
        squatter.wait(timeout=10)
    # the squatter accepted connections but never got a request
    assert not got.exists() or got.read_bytes() == b"", got.read_bytes()
    assert PREFIX + "second" not in bucket_objects(wt.boto, wt.bucket)
    assert PREFIX + "first" in bucket_objects(wt.boto, wt.bucket)

    # with the squatter gone, the next process starts the real agent, which finds the file
    res = write_secret(wt, "third")
    assert res.returncode == 0, res.describe()
    assert_lands(wt, "second")
    assert_lands(wt, "third")


# Binds argv[1] in the abstract namespace, says "listening", and appends whatever any
# client sends to argv[2].
SQUATTER = r"""
import socket, sys, threading
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind("\0" + sys.argv[1])
s.listen(16)
print("listening", flush=True)
def serve(c):
    while True:
        try:
            data = c.recv(65536)
        except OSError:
            return
        if not data:
            return
        with open(sys.argv[2], "ab") as f:
            f.write(data)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def test_agent_refuses_a_client_of_another_user(wt):
    """Root's agent answers nobody else: the other user's request (a drain) gets the
    connection closed without a reply."""
    before = tree_sockets()
    res = write_secret(wt)
    assert res.returncode == 0, res.describe()
    new = tree_sockets() - before
    assert len(new) == 1, (new, wt.diagnostics())
    probe = as_other(["python3", "-c", PROBE, new.pop()])
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == b"closed", probe.stdout
    assert_lands(wt)


# Connects to argv[1] and sends a DRAIN request (UP_DRAIN = 4 in uploader/up_wire.h);
# prints "closed" when the agent closes without answering, else what came back.
PROBE = r"""
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
try:
    s.connect("\0" + sys.argv[1])
except OSError as e:
    print("closed"); sys.exit(0)
try:
    s.send(struct.pack("=II", 4, 1000) + b"\0")
    data = s.recv(65536)
except OSError:
    data = b""
print("closed" if not data else repr(data))
"""


@pytest.fixture(autouse=True)
def _other_user_exists():
    try:
        import pwd
        pwd.getpwuid(OTHER)
    except KeyError:
        pytest.fail(f"uid {OTHER} (nobody) is missing on this machine")
    assert os.geteuid() == 0, "these tests need root (they act as uid 0 and as nobody)"
