"""Read routes through a bad network (issue 15): Toxiproxy between rwsplit and MinIO.

Each case reads the same objects (a small one, a 3 MiB one fetched whole, a 20 MiB one
filled lazily in 8 MiB ranged GETs) with `sha256sum` through a read route whose store is
reached through Toxiproxy, and compares with what boto3 put (boto3 talks to MinIO directly).
No case may read a wrong byte or fail:

- permanent toxics the client must live with: latency, slicer (bytes trickle in small
  pieces), limit_data (every connection is cut after 1 MiB, so each GET goes on from where
  the last one stopped, with If-Match pinning the version);
- transient outages in the middle of the reads (a bandwidth toxic makes them last seconds):
  reset_peer (connections reset) and timeout (data stops and connections hang, which only
  the client's stall_timeout notices), removed after a while; the store's retry_time covers
  them, and the rwsplit log shows that retries happened.

With the fetch agent on and off (the agent's client or the process's own).
"""

import hashlib
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.harness import proc
from tests.harness.routes import ReadRoute
from tests.harness.toxiproxy import Toxiproxy

MiB = 1 << 20
OBJECTS = {"small.bin": 100_000, "whole.bin": 3 * MiB, "lazy.bin": 20 * MiB}
STORE = {"retry_time": "40s", "max_attempts": 60, "stall_timeout": "2s",
         "connect_timeout": "1s"}


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def objects(minio):
    return {rel: os.urandom(n) for rel, n in OBJECTS.items()}


@pytest.fixture
def setup(minio, build, boto, bucket, objects, tmp_path):
    build.require(build.lib)
    for rel, data in objects.items():
        boto.put_object(Bucket=bucket, Key=f"data/{rel}", Body=data)
    routes = []
    with Toxiproxy(minio.port) as toxi:
        def make(agent):
            r = ReadRoute(minio, build, bucket, tmp_path, endpoint=toxi.endpoint,
                          glob={"agent": agent}, store=STORE, whole_object_max="8MiB")
            routes.append(r)
            return r
        yield toxi, make
        for r in routes:
            r.cleanup()


def read_all(route, objects):
    names = sorted(objects)
    res = route.run(["sha256sum", *[route.path(n) for n in names]], timeout=150)
    proc.expect_ok(res)  # exit 0, and no rwsplit warning: retries that succeed are info
    got = dict((line.split()[1].rsplit("/", 1)[1], line.split()[0])
               for line in res.stdout.decode().splitlines())
    assert got == {n: sha(objects[n]) for n in names}, res.describe()
    return res


PERMANENT = {
    "latency": [("latency", "downstream", {"latency": 60, "jitter": 20}),
                ("latency", "upstream", {"latency": 60, "jitter": 20})],
    "slicer": [("slicer", "downstream", {"average_size": 1500, "size_variation": 1000,
                                         "delay": 50})],
    "limit_data": [("limit_data", "downstream", {"bytes": MiB})],
}


@pytest.mark.parametrize("agent", ["off", "on"])
@pytest.mark.parametrize("case", sorted(PERMANENT))
def test_permanent_toxic(setup, objects, case, agent):
    toxi, make = setup
    for i, (kind, stream, attrs) in enumerate(PERMANENT[case]):
        toxi.add(f"{case}{i}", kind, stream=stream, **attrs)
    res = read_all(make(agent), objects)
    if case == "limit_data" and agent == "off":  # every GET over 1 MiB was cut, went on
        assert b"retrying GET" in res.stderr, res.describe()


TRANSIENT = {
    "reset_peer": ("reset_peer", {"timeout": 0}),
    "timeout": ("timeout", {"timeout": 0}),
}


@pytest.mark.parametrize("agent", ["off", "on"])
@pytest.mark.parametrize("case", sorted(TRANSIENT))
def test_outage_in_the_middle(setup, objects, case, agent):
    toxi, make = setup
    route = make(agent)
    # ~23 MiB at 6 MB/s per connection: the reads take seconds, the outage falls inside.
    toxi.add("slow", "bandwidth", rate=6 * 1024)
    env = route.env()
    names = sorted(objects)
    p = subprocess.Popen(["sha256sum", *[route.path(n) for n in names]], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    out = {}
    reader = threading.Thread(target=lambda: out.update(zip(("o", "e"), p.communicate())))
    reader.start()
    time.sleep(1.0)
    kind, attrs = TRANSIENT[case]
    toxi.add(case, kind, **attrs)
    time.sleep(3.0)  # longer than stall_timeout
    toxi.remove(case)
    reader.join(timeout=150)
    if reader.is_alive():
        p.kill()
        reader.join(timeout=10)
        raise AssertionError(f"sha256sum still running: {out}")
    err = out["e"].decode(errors="replace")
    assert p.returncode == 0, err
    got = dict((line.split()[1].rsplit("/", 1)[1], line.split()[0])
               for line in out["o"].decode().splitlines())
    assert got == {n: sha(objects[n]) for n in names}, err
    assert " warn:" not in err and " error:" not in err, err
    if agent == "off":  # the outage did hit a GET
        assert "retrying GET" in err, err


# A thread downloads (holding the object's lock file) while the main thread forks a child
# that then lives on (a DataLoader worker); the child's copy of the lock fd must not keep the
# lock once the parent's download is done.
FORK_DURING_DOWNLOAD = r"""
import os, sys, threading, time
path = sys.argv[1]
def read():
    with open(path, "rb") as f:
        f.read()
t = threading.Thread(target=read)
t.start()
time.sleep(float(sys.argv[2]))
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    time.sleep(60)
    os._exit(0)
t.join()
print(pid, flush=True)
"""


def test_lock_not_kept_by_a_child_forked_during_a_download(setup, objects, minio):
    """Process A's thread downloads whole.bin (3 MiB at 1 MB/s, agent off) and A forks a
    child that sleeps 60 s; process B asks for the same object meanwhile and waits on its
    lock. B must finish soon after A's download, not when A's child exits."""
    toxi, make = setup
    route = make("off")
    toxi.add("slow", "bandwidth", rate=1024)
    a = subprocess.Popen([sys.executable, "-c", FORK_DURING_DOWNLOAD, route.path("whole.bin"),
                          "0.5"], env=route.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    child = None
    try:
        time.sleep(1.0)  # A's download and its child are under way
        start = time.monotonic()
        b = route.run(["sha256sum", route.path("whole.bin")], timeout=40)
        waited = time.monotonic() - start
        # (not communicate(): the child keeps a copy of A's stderr, rwsplit's log fd)
        line = a.stdout.readline()
        assert a.wait(timeout=40) == 0, line
        child = int(line.split()[0])
        assert b.returncode == 0, b.describe()
        assert b.stdout.split()[0].decode() == sha(objects["whole.bin"])
        # The download takes about 3 s; the child lives 60 s.
        assert waited < 20, f"B waited {waited:.1f} s: the forked child kept the lock"
    finally:
        if a.poll() is None:
            a.kill()
        if child:
            try:
                os.kill(child, 9)
            except ProcessLookupError:
                pass


# A thread reads the start of a file larger than the cache budget (read through a private
# window) while the main thread forks; the child then reads the same start itself.
FORK_DURING_WINDOWED_READ = r"""
import hashlib, os, sys, threading, time
fd = os.open(sys.argv[1], os.O_RDONLY)
t = threading.Thread(target=lambda: os.pread(fd, 1 << 20, 0))
t.start()
time.sleep(0.5)
pid = os.fork()
if pid == 0:
    data = os.pread(fd, 1 << 20, 0)
    print("child", hashlib.sha256(data).hexdigest(), flush=True)
    os._exit(0)
t.join()
_, status = os.waitpid(pid, 0)
print("parent", status, flush=True)
"""


def test_fork_child_reads_a_windowed_file_its_parent_was_filling(setup, objects, minio,
                                                                   tmp_path):
    """lazy.bin (20 MiB) through an 8 MiB cache is read through a window whose chunk map is
    private memory. A child forked while a parent thread had claimed chunk 0 (slowed to 2 s
    by a bandwidth toxic) must fetch it itself, not wait for a claim it can never see
    completed."""
    toxi, make = setup
    route = make("off")
    route.conf.write_text(route.conf.read_text().replace("whole_object_max = 8MiB",
                                                         "whole_object_max = 8MiB\ncache = 8MiB"))
    toxi.add("slow", "bandwidth", rate=4096)
    res = route.run([sys.executable, "-c", FORK_DURING_WINDOWED_READ, route.path("lazy.bin")],
                    timeout=60)
    assert res.returncode == 0, res.describe()
    lines = dict(line.split(" ", 1) for line in res.stdout.decode().splitlines())
    assert lines.get("child") == sha(objects["lazy.bin"][:1 << 20]), res.describe()
    assert lines.get("parent") == "0", res.describe()
