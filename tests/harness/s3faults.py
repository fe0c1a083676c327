"""An HTTP proxy in front of MinIO that injects S3-level faults: error responses (503
SlowDown with its XML body, 500 InternalError) and lost responses (the request reaches the
store and takes effect, but the client's connection is closed before any byte of the answer).

Toxiproxy works on TCP streams and cannot tell one S3 request from another; these faults need
to pick a request (CreateMultipartUpload, CompleteMultipartUpload, the 3rd PUT, ...), so they
are made here. The proxy runs in threads of the test process; rules are set from the test:

    with S3Faults(minio.port) as faults:
        faults.add("POST", "uploads", "lose", times=1)         # CreateMultipartUpload
        faults.add("POST", "uploadId", "lose", times=1)        # CompleteMultipartUpload
        faults.add("PUT", "partNumber", "503", times=2)
        ... clients use faults.endpoint ...
        faults.hits("lose")                                   # how many were injected

The request is forwarded with its headers as they came (the SigV4 signature covers the Host
header, which names the proxy: MinIO checks the signature against that header, as it does
behind Toxiproxy). Bodies are buffered in memory: keep objects in tests to tens of MiB.
"""

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ERROR_BODIES = {
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
}
# Hop-by-hop headers are not forwarded (RFC 9110 7.6.1).
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
       "upgrade"}


@dataclass
class Rule:
    method: str
    query_key: str     # a query parameter the request must have ("" for none needed)
    action: str        # "lose", "503", "500"
    times: int         # how many matching requests to hit (then the rule is spent)
    skip: int = 0      # matching requests to let through first
    no_query_key: str = ""  # a query parameter the request must not have
    before: object = None   # called with the query ({name: [values]}) before the fault
    hit: int = 0


class S3Faults:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.rules = []
        self.log = []          # (method, path, query keys, action or "pass", status)
        self.lock = threading.Lock()
        self.server = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, method, query_key, action, times=1, skip=0, no_query_key="", before=None):
        """Injects action ("lose", "503", "500") into the next `times` requests of method
        that have query parameter query_key (and not no_query_key), after letting `skip`
        of them through. before(query), if given, runs in the proxy just before the fault:
        a test's way to change the store at that moment."""
        if action not in ("lose", *ERROR_BODIES):
            raise ValueError(action)
        with self.lock:
            self.rules.append(Rule(method, query_key, action, times, skip, no_query_key,
                                   before))

    def hits(self, action=None):
        with self.lock:
            return sum(1 for e in self.log if action is None and e[3] != "pass"
                       or e[3] == action)

    def requests(self, method=None, query_key=None):
        """Logged requests (method, path, query keys, action, status) that match."""
        with self.lock:
            return [e for e in self.log if (method is None or e[0] == method)
                    and (query_key is None or query_key in e[2])]

    def _decide(self, method, query):
        with self.lock:
            for r in self.rules:
                if r.hit >= r.times or r.method != method:
                    continue
                if r.query_key and r.query_key not in query:
                    continue
                if r.no_query_key and r.no_query_key in query:
                    continue
                if r.skip > 0:
                    r.skip -= 1
                    return "pass", None
                r.hit += 1
                return r.action, r.before
        return "pass", None

    def _record(self, *entry):
        with self.lock:
            self.log.append(entry)

    def start(self):
        faults = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                split = urlsplit(self.path)
                query = parse_qs(split.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action, before = faults._decide(self.command, query)
                if before:
                    before(query)
                if action in ERROR_BODIES:
                    status, code, message = ERROR_BODIES[action]
                    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}'
                           f"</Code><Message>{message}</Message><Resource>{split.path}"
                           "</Resource><RequestId>injected</RequestId></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(xml)))
                    if status == 503:
                        self.send_header("Retry-After", "1")
                    self.end_headers()
                    self.wfile.write(xml)
                    faults._record(self.command, split.path, set(query), action, status)
                    return
                up = http.client.HTTPConnection("127.0.0.1", faults.upstream_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in HOP and k.lower() != "expect"}
                    up.request(self.command, self.path, body=body, headers=headers)
                    resp = up.getresponse()
                    data = resp.read()
                finally:
                    up.close()
                faults._record(self.command, split.path, set(query), action, resp.status)
                if action == "lose":
                    # It took effect in the store; the client never hears of it.
                    self.close_connection = True
                    return
                self.send_response_only(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() in HOP or (k.lower() == "content-length"
                                            and self.command != "HEAD"):
                        continue
                    self.send_header(k, v)
                if self.command != "HEAD":  # a HEAD's Content-Length is the object's
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="s3faults",
                         daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
