"""A throw-away Toxiproxy server on loopback in front of one upstream (a MinIO).

Used by the fault tests (network faults, lost responses, a slow store) and by bench/ (store
latency). The binary is .tools/bin/toxiproxy-server, built by scripts/deps.sh at a pinned
version.

    with Toxiproxy(minio.port) as toxi:
        toxi.add("slow", "bandwidth", rate=512)          # KB/s, downstream
        ... clients use toxi.endpoint ...
        toxi.remove("slow")

Guarantees: every wait is bounded, and the server dies with the Python process that started
it (stop() in a finally/context manager, an atexit hook, PR_SET_PDEATHSIG).
"""

import atexit
import ctypes
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.harness.minio import TOOLS_BIN, free_port

TOXI_BIN = Path(os.environ.get("RWSPLIT_TOXIPROXY_BIN", TOOLS_BIN / "toxiproxy-server"))
READY_TIMEOUT = 20.0

_live = set()
atexit.register(lambda: [t.stop() for t in list(_live)])


def _die_with_parent():
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()


class Toxiproxy:
    """One proxy named "store" from 127.0.0.1:<listen_port> to 127.0.0.1:<upstream_port>."""

    NAME = "store"

    def __init__(self, upstream_port, work=None):
        self.upstream_port = upstream_port
        self.api_port, self.listen_port = free_port(), free_port()
        self.work = Path(work or tempfile.mkdtemp(prefix="rwsplit-toxi-"))
        self.log_path = self.work / "toxiproxy.log"
        self.proc = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.listen_port}"

    def _req(self, method, path, body=None):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", data=data,
                                   method=method, headers={"Content-Type": "application/json"})
        with opener.open(r, timeout=5) as resp:
            return json.loads(resp.read() or b"null")

    def start(self):
        if not TOXI_BIN.exists():
            raise RuntimeError(f"{TOXI_BIN} is missing: run scripts/deps.sh")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(TOXI_BIN), "-host", "127.0.0.1", "-port",
                                      str(self.api_port)], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        log.close()
        _live.add(self)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                self._req("GET", "/version")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"toxiproxy-server did not start (log {self.log_path})")
                time.sleep(0.1)
        self._req("POST", "/proxies", {"name": self.NAME,
                                       "listen": f"127.0.0.1:{self.listen_port}",
                                       "upstream": f"127.0.0.1:{self.upstream_port}",
                                       "enabled": True})
        return self

    def add(self, name, kind, stream="downstream", toxicity=1.0, **attributes):
        """Adds toxic `name` of type kind (latency, bandwidth, timeout, reset_peer,
        limit_data, slicer, slow_close) with its attributes."""
        self._req("POST", f"/proxies/{self.NAME}/toxics",
                  {"name": name, "type": kind, "stream": stream, "toxicity": toxicity,
                   "attributes": attributes})

    def remove(self, name):
        self._req("DELETE", f"/proxies/{self.NAME}/toxics/{name}")

    def toxics(self):
        return self._req("GET", f"/proxies/{self.NAME}/toxics")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        _live.discard(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
