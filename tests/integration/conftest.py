"""Fixtures shared by the integration tests: a real MinIO, independent clients (mc, boto3),
fresh buckets, rwsplit config files and the build products.

Run from the repository root:  .tools/venv/bin/python -m pytest -q tests/integration
RWSPLIT_BUILD selects the build directory (default: build).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.harness.minio import Mc, MinioServer, random_bucket_name  # noqa: E402


def _build_dir():
    path = Path(os.environ.get("RWSPLIT_BUILD", "build"))
    return path if path.is_absolute() else REPO / path


@dataclass(frozen=True)
class BuildPaths:
    root: Path
    rwsplit: Path
    s3op: Path
    lib: Path

    def require(self, path):
        """The path, or a test failure that says how to build it."""
        if not path.exists():
            pytest.fail(f"{path} is missing: build it first (`make integration`, or "
                        f"`make BUILD=DIR DIR/tests/s3op` and RWSPLIT_BUILD=DIR)", pytrace=False)
        return path


@pytest.fixture(scope="session")
def build():
    root = _build_dir()
    return BuildPaths(root=root, rwsplit=root / "bin" / "rwsplit",
                      s3op=root / "tests" / "s3op", lib=root / "lib" / "librwsplit.so")


# -- servers and independent clients ---------------------------------------------------------


@pytest.fixture(scope="session")
def minio():
    """One MinIO for the whole session."""
    server = MinioServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mc(minio):
    client = Mc(minio)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def boto(minio):
    """boto3 S3 client: the second independent client."""
    return minio.boto3_client()


@pytest.fixture
def bucket(mc):
    """A fresh, empty bucket, removed with its content afterwards."""
    name = random_bucket_name()
    mc.mb(name)
    try:
        yield name
    finally:
        mc.rb(name)


@pytest.fixture
def restartable_minio():
    """A server of the test's own, which the test may stop, pause and start again."""
    server = MinioServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- config files ----------------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path, minio):
    """config_file(server=None, name="rwsplit.conf", routes=(), endpoint=None, **overrides).

    Writes an rwsplit config for server (default: the session server) into tmp_path and
    returns its path. overrides are [store] keys: retry_time="3s", max_attempts=4, ..."""

    def make(server=None, name="rwsplit.conf", routes=(), endpoint=None, **overrides):
        server = server or minio
        return server.write_config(tmp_path / name, routes=routes, endpoint=endpoint,
                                   **overrides)

    return make


# -- the s3op driver -------------------------------------------------------------------------

ERROR_RE = re.compile(
    r"^s3op: error: (?P<errno>E[A-Z0-9]+) \((?P<code>[^,]*), status (?P<status>-?\d+), "
    r"attempts (?P<attempts>\d+), request-id (?P<request_id>[^)]*)\)(?:: (?P<message>.*))?$",
    re.MULTILINE)


@dataclass
class S3opError:
    errno: str
    code: str
    status: int
    attempts: int
    request_id: str
    message: str


@dataclass
class S3opResult:
    args: list
    returncode: int
    stdout: bytes
    stderr: str
    elapsed: float

    @property
    def ok(self):
        return self.returncode == 0

    def fields(self):
        """key=value pairs of the first stdout line ("size=3 etag=abc ...")."""
        line = self.stdout.decode(errors="replace").split("\n", 1)[0]
        return dict(part.split("=", 1) for part in line.split() if "=" in part)

    def error(self):
        match = ERROR_RE.search(self.stderr)
        if not match:
            return None
        d = match.groupdict()
        return S3opError(errno=d["errno"], code=d["code"], status=int(d["status"]),
                         attempts=int(d["attempts"]), request_id=d["request_id"],
                         message=d["message"] or "")

    def describe(self):
        return (f"s3op {' '.join(map(str, self.args))!r} -> {self.returncode} "
                f"in {self.elapsed:.1f}s\nstdout: {self.stdout[:300]!r}\nstderr: {self.stderr}")


class S3op:
    """Runs build/tests/s3op with a config and the server's credentials."""

    def __init__(self, exe, server, config, spawned=None):
        self.exe = exe
        self.server = server
        self.config = config
        self.spawned = [] if spawned is None else spawned  # shared with using() copies

    def using(self, server=None, config=None):
        return S3op(self.exe, server or self.server, config or self.config, self.spawned)

    def kill_spawned(self):
        for proc in self.spawned:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    def command(self, args, store=None):
        cmd = [str(self.exe), "-c", str(self.config)]
        if store is not None:
            cmd += ["-s", store]
        return cmd + [str(a) for a in args]

    def __call__(self, *args, env=None, store=None, timeout=120):
        cmd = self.command(args, store)
        start = time.monotonic()
        proc = subprocess.run(cmd, env=self.server.child_env(env), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
        return S3opResult(list(args), proc.returncode, proc.stdout,
                          proc.stderr.decode(errors="replace"), time.monotonic() - start)

    def spawn(self, *args, env=None, store=None):
        """Starts s3op in the background; finish() collects it."""
        proc = subprocess.Popen(self.command(args, store), env=self.server.child_env(env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.rwsplit_args = list(args)
        proc.rwsplit_start = time.monotonic()
        self.spawned.append(proc)
        return proc

    @staticmethod
    def finish(proc, timeout=120):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
            raise AssertionError(f"s3op {proc.rwsplit_args} still running after {timeout} s; "
                                 f"stderr: {err.decode(errors='replace')}")
        return S3opResult(proc.rwsplit_args, proc.returncode, out,
                          err.decode(errors="replace"), time.monotonic() - proc.rwsplit_start)


@pytest.fixture
def s3op(build, minio, config_file):
    """s3op bound to the session server; s3op.using(server, config) for another one."""
    runner = S3op(build.require(build.s3op), minio, config_file())
    try:
        yield runner
    finally:
        runner.kill_spawned()


# The second user of the node in the trust tests (nobody/nogroup).
OTHER_UID = 65534


@pytest.fixture
def other_dir():
    """other_dir(name) -> a directory in /tmp owned by the second user (OTHER_UID), mode
    0777: the attacker's own place, which that user can reach; removed afterwards."""
    made = []

    def make(name):
        d = Path(tempfile.mkdtemp(prefix=f"rwsplit-{name}-", dir="/tmp"))
        os.chown(d, OTHER_UID, OTHER_UID)
        os.chmod(d, 0o777)
        made.append(d)
        return d
    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)
