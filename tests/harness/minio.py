"""A throw-away MinIO server on loopback, plus independent clients to check results with.

Used by the integration tests (tests/integration/conftest.py), by bench/ and by `make demo`:

    with MinioServer() as server:
        mc = Mc(server)
        mc.mb("data")
        s3 = server.boto3_client()
        server.write_config("rwsplit.conf", routes=[("read", "/mnt/data", "s3://data/")])

Command line (from the repository root):

    python -m tests.harness.minio run -- CMD ARGS...   # server for the life of CMD
    python -m tests.harness.minio serve                # until Ctrl-C, prints the settings

`run` exports RWSPLIT_TEST_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
MC_CONFIG_DIR (with the alias `local` pointing at the server) to CMD and exits with its status.

Guarantees: every wait is bounded, and no server outlives the Python process that started it
(stop() in a finally/context manager, an atexit hook, and PR_SET_PDEATHSIG for the cases where
Python itself is killed).
"""

import atexit
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO / ".tools" / "bin"
MINIO_BIN = Path(os.environ.get("RWSPLIT_MINIO_BIN", TOOLS_BIN / "minio"))
MC_BIN = Path(os.environ.get("RWSPLIT_MC_BIN", TOOLS_BIN / "mc"))

REGION = "us-east-1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# Variables of the caller's environment that would change how a client under test behaves
# (another identity, a proxy in front of loopback, a shared credentials file).
_CLIENT_ENV_NOISE = (
    "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_ENDPOINT_URL",
    "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN",
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
)

_live_servers = set()


def _stop_all_servers():
    for server in list(_live_servers):
        server.stop(hard=True)


atexit.register(_stop_all_servers)


def free_port():
    """A port that was free on 127.0.0.1 a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_bucket_name(tag="it"):
    """A valid bucket name nobody else uses."""
    return f"{tag}-{secrets.token_hex(6)}"


def _die_with_parent():
    """preexec_fn: the kernel kills the child when the thread that spawned it exits (so start
    long-lived servers from the main thread)."""
    PR_SET_PDEATHSIG = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _direct_opener():
    """urllib without any proxy: the server is on loopback."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def child_env(extra=None):
    """os.environ minus what would redirect a client, plus extra (values None delete)."""
    env = {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV_NOISE}
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


class MinioError(RuntimeError):
    pass


class MinioServer:
    """One MinIO process on 127.0.0.1 with its own data directory and random root credentials.

    start() may be called again after stop(keep_data=True): same port, same data, same
    credentials, which is what "the server goes away and comes back" tests need.
    """

    def __init__(self, port=None, access_key=None, secret_key=None, domain=None,
                 extra_env=None):
        """domain: MINIO_DOMAIN, for virtual-host addressing (e.g. "localhost", which curl
        resolves with every subdomain to loopback). extra_env: more server variables (e.g.
        MINIO_IDENTITY_OPENID_* for its STS)."""
        self.extra_env = dict(extra_env or {})
        self._fixed_port = port is not None
        self.domain = domain
        self.port = port or free_port()
        self.console_port = free_port()
        self.access_key = access_key or "rw" + secrets.token_hex(6)
        self.secret_key = secret_key or secrets.token_hex(16)
        self.region = REGION
        self.work_dir = None          # holds data/, certs/ and minio.log
        self.proc = None
        self._log = None
        self._paused = False

    # -- addresses ------------------------------------------------------------------------

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self):
        return Path(self.work_dir) / "data" if self.work_dir else None

    @property
    def log_path(self):
        return Path(self.work_dir) / "minio.log" if self.work_dir else None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout=READY_TIMEOUT):
        """Starts the server and returns once it answers /minio/health/ready."""
        if self.running():
            return self
        if not MINIO_BIN.exists():
            raise MinioError(f"{MINIO_BIN} is missing: run scripts/deps.sh")
        if self.work_dir is None:
            self.work_dir = tempfile.mkdtemp(prefix="rwsplit-minio-")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A port picked by free_port() can be taken by someone else before MinIO binds it;
        # then pick again (unless the caller needs this exact port, e.g. on a restart).
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            try:
                self._spawn_and_wait(timeout)
                return self
            except MinioError:
                self._kill_process()
                if attempt + 1 == attempts:
                    raise
                self.port, self.console_port = free_port(), free_port()
        return self

    def _spawn_and_wait(self, timeout):
        env = child_env({
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_SITE_REGION": self.region,
        })
        if self.domain:
            env["MINIO_DOMAIN"] = self.domain
        env.update(self.extra_env)
        cmd = [
            str(MINIO_BIN), "server", "--quiet", "--anonymous",
            "--address", f"127.0.0.1:{self.port}",
            "--console-address", f"127.0.0.1:{self.console_port}",
            "--certs-dir", str(Path(self.work_dir) / "certs"),
            str(self.data_dir),
        ]
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n=== start {time.ctime()} port {self.port}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        self._paused = False
        _live_servers.add(self)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout):
        url = f"{self.endpoint}/minio/health/ready"
        opener = _direct_opener()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MinioError(f"minio exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with opener.open(url, timeout=1) as resp:
                    if resp.status == 200:
                        self._check_still_running()
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.1)
        raise MinioError(f"minio not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def _check_still_running(self):
        """A server that answered may be someone else's that took the port first: ours then
        exits at once ("address already in use"). Give it a moment to do so."""
        try:
            self.proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            return
        raise MinioError(f"minio exited with {self.proc.returncode}:\n{self.log_tail()}")

    def stop(self, keep_data=False, hard=False):
        """Stops the server (SIGTERM, then SIGKILL; hard=True: SIGKILL at once, like a crash).

        Removes the data directory unless keep_data. Safe to call any number of times."""
        self._kill_process(hard=hard)
        if not keep_data and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None
        if self.work_dir is None:
            _live_servers.discard(self)

    def _kill_process(self, hard=False):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            if self._paused:
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            if hard:
                proc.kill()
            else:
                proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        self._paused = False
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, down_for=0.0, hard=True):
        """Stops the server keeping its data, waits down_for seconds, starts it again."""
        self.stop(keep_data=True, hard=hard)
        if down_for > 0:
            time.sleep(down_for)
        self._fixed_port = True
        return self.start()

    def pause(self):
        """SIGSTOP: connections are accepted by the kernel but never answered (a hung server)."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGSTOP)
            self._paused = True

    def resume(self):
        if self.running() and self._paused:
            os.kill(self.proc.pid, signal.SIGCONT)
        self._paused = False

    def log_tail(self, lines=30):
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what clients need ----------------------------------------------------------------

    def env(self):
        """The variables a program needs to talk to this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "RWSPLIT_TEST_ENDPOINT": self.endpoint,
        }

    def child_env(self, extra=None):
        """A full environment for a subprocess: os.environ cleaned, plus env(), plus extra."""
        merged = dict(self.env())
        merged.update(extra or {})
        return child_env(merged)

    def config_text(self, routes=(), store_name="", endpoint=None, **overrides):
        """An rwsplit INI config for this server.

        routes: (mode, local, url) or (mode, local, url, {key: value}) tuples, mode "read" or
        "write". overrides: [store] keys, e.g. retry_time="3s", max_attempts=4; they replace
        the defaults written here (endpoint, region, addressing = path)."""
        header = f"[store {store_name}]" if store_name else "[store]"
        settings = {"endpoint": endpoint or self.endpoint, "region": self.region,
                    "addressing": "path"}
        settings.update(overrides)
        lines = [header] + [f"{key} = {value}" for key, value in settings.items()]
        for route in routes:
            mode, local, url = route[:3]
            options = route[3] if len(route) > 3 else {}
            lines += ["", f"[{mode} {local}]", f"url = {url}"]
            if store_name:
                lines.append(f"store = {store_name}")
            lines += [f"{key} = {value}" for key, value in options.items()]
        return "\n".join(lines) + "\n"

    def write_config(self, path, routes=(), store_name="", endpoint=None, **overrides):
        path = Path(path)
        path.write_text(self.config_text(routes, store_name, endpoint, **overrides))
        return path

    def boto3_client(self, access_key=None, secret_key=None):
        """A boto3 S3 client for this server (path addressing, few retries, short timeouts)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=32,
                proxies={},
            ),
        )


class McError(RuntimeError):
    def __init__(self, args, returncode, stderr):
        super().__init__(f"mc {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


class Mc:
    """The MinIO client with a private config dir and the alias `local` for server.

    Targets are "bucket" or "bucket/key"; the alias is prepended here."""

    def __init__(self, server, alias="local", config_dir=None, timeout=120):
        self.server = server
        self.alias = alias
        self.timeout = timeout
        self._own_dir = config_dir is None
        self.config_dir = Path(config_dir or tempfile.mkdtemp(prefix="rwsplit-mc-"))
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.run("alias", "set", alias, server.endpoint, server.access_key, server.secret_key,
                 "--api", "S3v4", "--path", "on")

    def close(self):
        if self._own_dir:
            shutil.rmtree(self.config_dir, ignore_errors=True)

    def env(self):
        return child_env({"MC_CONFIG_DIR": str(self.config_dir)})

    def run(self, *args, timeout=None, check=True):
        """Runs mc; returns the CompletedProcess (stdout as bytes)."""
        cmd = [str(MC_BIN), "--no-color", *[str(a) for a in args]]
        proc = subprocess.run(cmd, env=self.env(), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout or self.timeout)
        if check and proc.returncode != 0:
            raise McError([str(a) for a in args], proc.returncode,
                          proc.stderr.decode(errors="replace") +
                          proc.stdout.decode(errors="replace"))
        return proc

    def target(self, path):
        return f"{self.alias}/{path}"

    def _json_lines(self, *args, check=True):
        proc = self.run(*args, "--json", check=check)
        out = []
        for line in proc.stdout.decode().splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def mb(self, bucket):
        self.run("mb", self.target(bucket))

    def rb(self, bucket):
        """Removes the bucket and everything in it."""
        self.run("rb", "--force", self.target(bucket))

    def put(self, local, path):
        self.run("cp", "--quiet", str(local), self.target(path))

    def put_bytes(self, path, data):
        with tempfile.NamedTemporaryFile(prefix="rwsplit-mc-put-") as f:
            f.write(data)
            f.flush()
            self.put(f.name, path)

    def get(self, path, local):
        """Downloads path into the local file (for objects too big to hold as bytes)."""
        self.run("cp", "--quiet", self.target(path), str(local))

    def cat(self, path):
        return self.run("cat", self.target(path)).stdout

    def stat(self, path):
        """mc stat --json as a dict (keys: name, size, etag, lastModified, type, metadata)."""
        return self._json_lines("stat", self.target(path))[0]

    def exists(self, path):
        proc = self.run("stat", "--json", self.target(path), check=False)
        return proc.returncode == 0

    def ls(self, path, recursive=True):
        """mc ls --json entries (dicts with key, size, etag, type, lastModified)."""
        args = ["ls", self.target(path)]
        if recursive:
            args.insert(1, "--recursive")
        return self._json_lines(*args)

    def rm(self, path, recursive=False):
        args = ["rm", self.target(path)]
        if recursive:
            args[1:1] = ["--recursive", "--force"]
        self.run(*args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- command line -------------------------------------------------------------------------


def _exit_status(returncode):
    return 128 - returncode if returncode < 0 else returncode


def _raise_system_exit(signum, frame):
    raise SystemExit(128 + signum)


def _run(argv):
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(USAGE, file=sys.stderr)
        return 64
    # SIGTERM would otherwise end Python without running finally blocks.
    signal.signal(signal.SIGTERM, _raise_system_exit)
    with MinioServer() as server, Mc(server) as mc:
        env = server.child_env({"MC_CONFIG_DIR": str(mc.config_dir)})
        print(f"minio: {server.endpoint} (log {server.log_path})", file=sys.stderr)
        proc = subprocess.Popen(argv, env=env)
        try:
            return _exit_status(proc.wait())
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise


def _serve():
    signal.signal(signal.SIGTERM, _raise_system_exit)
    with MinioServer() as server, Mc(server) as mc:
        for key, value in server.env().items():
            print(f"export {key}={value}")
        print(f"export MC_CONFIG_DIR={mc.config_dir}")
        print(f"# log: {server.log_path}; Ctrl-C stops the server", flush=True)
        try:
            while server.running():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


USAGE = """usage: python -m tests.harness.minio run -- CMD ARGS...
       python -m tests.harness.minio serve

run    start a throw-away MinIO, run CMD with RWSPLIT_TEST_ENDPOINT, AWS_ACCESS_KEY_ID,
       AWS_SECRET_ACCESS_KEY, AWS_REGION and MC_CONFIG_DIR (alias `local`) exported, stop
       the server and exit with CMD's status
serve  run a server until Ctrl-C and print its settings as shell exports"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] == "run":
            return _run(argv[1:])
        if argv == ["serve"]:
            return _serve()
    except KeyboardInterrupt:
        return 130  # the server is already stopped by the with-blocks
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    print(USAGE, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main())
