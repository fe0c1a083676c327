"""A minimal OpenID issuer on loopback for MinIO's STS (AssumeRoleWithWebIdentity): a static
discovery document and a JWKS with one RSA key the test generates, served from a thread of
the test process, and signed tokens (RS256) with the claims MinIO checks (iss, aud, azp, exp,
and the policy claim MinIO maps to its policies).

    with Issuer(client_id="rwsplit-test") as iss:
        server = MinioServer(extra_env=iss.minio_env())
        token = iss.token(policy="readwrite", lifetime=3600)
"""

import base64
import http.server
import json
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.harness.minio import free_port


def _b64(n):
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Issuer:
    def __init__(self, client_id="rwsplit-test", claim="policy"):
        self.client_id = client_id
        self.claim = claim
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = self.key.public_key().public_numbers()
        self.docs = {
            "/.well-known/openid-configuration": {
                "issuer": self.url, "jwks_uri": self.url + "/jwks",
                "authorization_endpoint": self.url + "/auth",
                "token_endpoint": self.url + "/token",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]},
            "/jwks": {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                                "n": _b64(pub.n), "e": _b64(pub.e)}]},
        }
        self.requests = 0
        self._server = None
        self._thread = None

    def start(self):
        docs, issuer = self.docs, self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                issuer.requests += 1
                doc = docs.get(self.path.split("?")[0])
                body = json.dumps(doc).encode() if doc is not None else b"{}"
                self.send_response(200 if doc is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def minio_env(self):
        return {"MINIO_IDENTITY_OPENID_CONFIG_URL":
                self.url + "/.well-known/openid-configuration",
                "MINIO_IDENTITY_OPENID_CLIENT_ID": self.client_id,
                "MINIO_IDENTITY_OPENID_CLAIM_NAME": self.claim}

    def token(self, policy="readwrite", lifetime=3600, subject="trainer", audience=None):
        now = int(time.time())
        claims = {"iss": self.url, "sub": subject, "aud": audience or self.client_id,
                  "azp": audience or self.client_id, "iat": now, "exp": now + lifetime,
                  self.claim: policy}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})
