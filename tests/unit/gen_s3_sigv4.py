#!/usr/bin/env python3
"""Generates the S3 SigV4 vectors under tests/unit/data/s3-sigv4/ with botocore, an
implementation independent of ours, so tests/unit/test_sigv4.c can check the S3 signing rules
(no path normalization, the key encoded once, x-amz-content-sha256, UNSIGNED-PAYLOAD
presigning) that the generic AWS test suite does not cover.

Usage (from the repository root; needs botocore, e.g. the venv from `make deps`):
    .tools/venv/bin/python tests/unit/gen_s3_sigv4.py          # (re)write the vectors
    .tools/venv/bin/python tests/unit/gen_s3_sigv4.py --check  # verify they are up to date

The output is committed test data; re-running with the same botocore must give identical
files (the signing time is fixed per case).

Directory format: the same as the AWS test suite (tests/unit/data/aws-sigv4-test-suite/v4/),
one directory per case holding context.json, request.txt and the expected
{header,query}-{canonical-request,string-to-sign,signature}.txt, read by the same C code.
Conventions that differ from the generic suite, all keyed by fields of context.json:

  "s3": true        S3 rules: "normalize" is false (S3 never removes "." / ".." / "//") and a
                    presigned URL carries the payload hash "UNSIGNED-PAYLOAD" (what
                    S3SigV4QueryAuth signs), not the body's hash.
  "sign_body": true Header signing signs x-amz-content-sha256 (S3SigV4Auth always adds it).
                    request.txt does NOT contain that header: the C side sets
                    add_content_sha256 and lets the signer add it, exactly like x-amz-date and
                    x-amz-security-token, which botocore also adds itself.
  "payload_hash"    Only present when header signing used something other than the SHA-256
                    of request.txt's body, i.e. "UNSIGNED-PAYLOAD" (payload signing disabled).

request.txt therefore lists exactly the headers botocore signed minus those three signer-added
ones; main() asserts that from botocore's SignedHeaders so a silently dropped or added header
(botocore skips e.g. User-Agent and Expect) cannot make the vectors disagree with request.txt.
The request line carries the path and query percent-encoded once (unreserved bytes stay, '/'
stays in the path), so the C side can decode them back to the raw key without ambiguity even
for keys holding '?', '&', '%' or '+'. The query is written in the order given below; the
signer must sort it.
"""

import argparse
import datetime
import hashlib
import json
import os
import sys
import types
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 's3-sigv4')

ACCESS_KEY = 'AKIDEXAMPLE'
SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
# Holds '/', '+' and '=' so the presigned X-Amz-Security-Token must be percent-encoded.
SESSION_TOKEN = 'FwoGZXIvYXdzEJr//////////wEaDH+example/session+token=='
DEFAULT_TIME = '2025-10-15T17:29:55Z'
SIGNER_ADDED = {'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token'}

# A continuation token as S3 returns them: base64 with '/', '+' and '='.
CONT_TOKEN = '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM+x8lL4AbpQ=='
UPLOAD_ID = ('VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA'
             '--exampleUploadId.with~tilde')

COMPLETE_BODY = (
    b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b'<Part><PartNumber>1</PartNumber><ETag>"a54357aff0632cce46d942af68356b38"</ETag></Part>'
    b'<Part><PartNumber>2</PartNumber><ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag></Part>'
    b'</CompleteMultipartUpload>')


def case(name, method, host, path, params=(), headers=(), body=b'', **opt):
    """One request. path is the decoded resource path ("/bucket/key"); params a list of
    decoded (name, value) pairs; headers a list of (Name, value) pairs (Host is added first)."""
    return dict(name=name, method=method, host=host, path=path, params=list(params),
                headers=[('Host', host)] + list(headers), body=body, **opt)


PATH_HOST = 's3.us-east-1.amazonaws.com'
VHOST = 'examplebucket.s3.us-east-1.amazonaws.com'

CASES = [
    case('get-object-path-style', 'GET', PATH_HOST, '/examplebucket/photos/2025/cat.jpg'),
    case('get-object-virtual-hosted', 'GET', VHOST, '/photos/cat.jpg'),
    case('get-object-range', 'GET', PATH_HOST, '/examplebucket/data/shard-00001.tfrecord',
         headers=[('Range', 'bytes=1048576-2097151')]),
    case('get-key-space', 'GET', PATH_HOST, '/examplebucket/my file  name.txt'),
    case('get-key-unicode', 'GET', PATH_HOST, '/examplebucket/数据/ñ.bin'),
    case('get-key-plus', 'GET', PATH_HOST, '/examplebucket/a+b c+d'),
    case('get-key-percent', 'GET', PATH_HOST, '/examplebucket/100%/already%20encoded%2F'),
    case('get-key-equals-ampersand', 'GET', PATH_HOST, '/examplebucket/k=v&x=y?z#frag'),
    case('get-key-unreserved', 'GET', PATH_HOST,
         '/examplebucket/~user/-._~0123456789ABCXYZabcxyz'),
    case('get-key-sub-delims', 'GET', PATH_HOST, "/examplebucket/!'()*,;:@$[]"),
    case('get-key-double-slash', 'GET', PATH_HOST, '/examplebucket/a//b'),
    case('get-key-dot-segment', 'GET', PATH_HOST, '/examplebucket/a/./b'),
    case('get-key-dotdot-segment', 'GET', PATH_HOST, '/examplebucket/a/../b'),
    case('get-key-trailing-dots', 'GET', VHOST, '/dir/..'),
    case('get-key-leading-slash', 'GET', VHOST, '//leading/slash/'),
    case('get-unsigned-payload', 'GET', PATH_HOST, '/examplebucket/big.bin',
         unsigned_payload=True),
    case('head-bucket', 'HEAD', PATH_HOST, '/examplebucket'),
    case('head-object', 'HEAD', VHOST, '/checkpoints/model.ckpt-100.index'),
    case('put-object-signed-payload', 'PUT', PATH_HOST, '/examplebucket/out/result.txt',
         headers=[('Content-Length', '25'), ('Content-Type', 'text/plain')],
         body=b'rwsplit wrote this file.\n'),
    case('put-object-empty', 'PUT', PATH_HOST, '/examplebucket/out/empty',
         headers=[('Content-Length', '0')]),
    case('put-object-if-none-match', 'PUT', VHOST, '/out/once.bin',
         headers=[('Content-Length', '4'), ('If-None-Match', '*')], body=b'\x00\x01\xfe\xff'),
    case('put-object-meta-spaces', 'PUT', VHOST, '/out/meta.txt',
         headers=[('Content-Length', '2'), ('x-amz-meta-Note', '  two   spaces  inside '),
                  ('X-Amz-Meta-Empty', '')],
         body=b'ok'),
    case('delete-object-unicode', 'DELETE', VHOST, '/tmp/ünïcödé 文件.tmp'),
    case('list-objects-v2', 'GET', PATH_HOST, '/examplebucket',
         params=[('list-type', '2'), ('prefix', 'a b/'), ('delimiter', '/'),
                 ('continuation-token', CONT_TOKEN), ('encoding-type', 'url')]),
    case('list-objects-v2-virtual-hosted', 'GET', VHOST, '/',
         params=[('list-type', '2'), ('prefix', '数据/a+b=c&d'), ('max-keys', '1000'),
                 ('encoding-type', 'url'), ('start-after', '数据/a+b=c&d/0~9')]),
    case('mpu-create', 'POST', PATH_HOST, '/examplebucket/big/model.bin',
         params=[('uploads', '')]),
    case('mpu-upload-part', 'PUT', PATH_HOST, '/examplebucket/big/model.bin',
         params=[('partNumber', '3'), ('uploadId', UPLOAD_ID)],
         headers=[('Content-Length', '11')], body=b'part three\n'),
    case('mpu-complete', 'POST', VHOST, '/big/model.bin',
         params=[('uploadId', UPLOAD_ID)],
         headers=[('Content-Length', str(len(COMPLETE_BODY))),
                  ('Content-Type', 'application/xml')],
         body=COMPLETE_BODY),
    case('mpu-abort', 'DELETE', VHOST, '/big/model.bin', params=[('uploadId', UPLOAD_ID)]),
    case('session-token', 'GET', PATH_HOST, '/examplebucket/secret/report.csv',
         token=SESSION_TOKEN),
    case('session-token-put', 'PUT', VHOST, '/uploads/x y.bin', token=SESSION_TOKEN,
         headers=[('Content-Length', '3')], body=b'xyz', expires=900),
    case('region-eu-west-3', 'GET', 'examplebucket.s3.eu-west-3.amazonaws.com', '/clé/été.txt',
         region='eu-west-3'),
    case('region-ap-southeast-2-list', 'GET', 's3.ap-southeast-2.amazonaws.com',
         '/examplebucket', params=[('list-type', '2'), ('prefix', '')],
         region='ap-southeast-2'),
    case('copy-object', 'PUT', PATH_HOST, '/dstbucket/copied/a b.bin',
         headers=[('x-amz-copy-source', '/srcbucket/dir/a%20b%2Bc/%E6%95%B0.bin'),
                  ('x-amz-metadata-directive', 'COPY')]),
    case('minio-localhost-port', 'PUT', '127.0.0.1:9000', '/bucket/dir/file.bin',
         headers=[('Content-Length', '5')], body=b'hello', scheme='http'),
    case('leap-day-midnight', 'GET', PATH_HOST, '/examplebucket/x',
         timestamp='2024-02-29T23:59:59Z', expires=604800),
    case('new-year', 'GET', PATH_HOST, '/examplebucket/y', timestamp='2000-01-01T00:00:00Z',
         expires=1),
]


class _Capture:
    """Mixin recording what botocore computed, so we write its canonical request, string to
    sign and signature instead of re-deriving them."""

    def string_to_sign(self, request, canonical_request):
        self.canonical = canonical_request
        self.sts = super().string_to_sign(request, canonical_request)
        return self.sts

    def signature(self, string_to_sign, request):
        self.sig = super().signature(string_to_sign, request)
        return self.sig


class HeaderAuth(_Capture, botocore.auth.S3SigV4Auth):
    pass


class QueryAuth(_Capture, botocore.auth.S3SigV4QueryAuth):
    pass


def fixed_clock(timestamp):
    """botocore.auth takes the signing time from datetime.datetime.utcnow() and overwrites
    request.context['timestamp'], so the module's datetime is what must be patched."""
    when = datetime.datetime.strptime(timestamp, '%Y-%m-%dT%H:%M:%SZ')

    class Fixed(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

    return mock.patch.object(botocore.auth, 'datetime', types.SimpleNamespace(datetime=Fixed))


def encoded_target(c):
    """The request target with the path and query encoded once (SigV4 / S3 style)."""
    target = percent_encode(c['path'], safe='/~')
    if c['params']:
        target += '?' + '&'.join(
            percent_encode(k) + ('=' + percent_encode(v) if v else '')
            for k, v in c['params'])
    return target


def sign(c, auth_cls, with_body):
    creds = Credentials(ACCESS_KEY, SECRET_KEY, c.get('token'))
    region = c.get('region', 'us-east-1')
    if auth_cls is QueryAuth:
        auth = auth_cls(creds, 's3', region, expires=c.get('expires', 3600))
    else:
        auth = auth_cls(creds, 's3', region)
    url = '%s://%s%s' % (c.get('scheme', 'https'), c['host'],
                         percent_encode(c['path'], safe='/~'))
    req = AWSRequest(method=c['method'], url=url, headers=dict(c['headers']),
                     data=c['body'] if with_body else b'', params=list(c['params']))
    if c.get('unsigned_payload'):
        req.context['client_config'] = Config(s3={'payload_signing_enabled': False})
    with fixed_clock(c.get('timestamp', DEFAULT_TIME)):
        auth.add_auth(req)
    return auth


def check_signed_headers(c, canonical, header_mode):
    """request.txt must list exactly what botocore signed, minus the signer-added headers."""
    signed = set(canonical.split('\n')[-2].split(';'))
    given = {name.lower() for name, _ in c['headers']}
    expected = given | ({'x-amz-date', 'x-amz-content-sha256'} if header_mode else set())
    if header_mode and c.get('token'):
        expected.add('x-amz-security-token')
    if signed != expected:
        sys.exit('%s: botocore signed %s, request.txt gives %s' %
                 (c['name'], sorted(signed), sorted(expected)))


def render(c):
    """Returns {file name: bytes} for one case."""
    header = sign(c, HeaderAuth, with_body=True)
    # A presigned URL is signed without the body: botocore's query signer would try to move a
    # body into the query string, and S3 presigning uses UNSIGNED-PAYLOAD anyway.
    query = sign(c, QueryAuth, with_body=False)
    check_signed_headers(c, header.canonical, True)
    check_signed_headers(c, query.canonical, False)

    body_hash = hashlib.sha256(c['body']).hexdigest()
    header_payload = header.canonical.rsplit('\n', 1)[1]
    creds = {'access_key_id': ACCESS_KEY, 'secret_access_key': SECRET_KEY}
    if c.get('token'):
        creds['token'] = c['token']
    ctx = {
        'credentials': creds,
        'expiration_in_seconds': c.get('expires', 3600),
        'normalize': False,
        'region': c.get('region', 'us-east-1'),
        'service': 's3',
        'sign_body': True,
        'timestamp': c.get('timestamp', DEFAULT_TIME),
        's3': True,
    }
    if header_payload != body_hash:
        assert header_payload == 'UNSIGNED-PAYLOAD', header_payload
        ctx['payload_hash'] = header_payload
    assert query.canonical.endswith('\nUNSIGNED-PAYLOAD')

    request = '%s %s HTTP/1.1\n' % (c['method'], encoded_target(c))
    request += ''.join('%s:%s\n' % h for h in c['headers'])
    files = {
        'context.json': (json.dumps(ctx, indent=4, ensure_ascii=False) + '\n').encode(),
        'request.txt': request.encode() + b'\n' + c['body'],
        'header-canonical-request.txt': header.canonical.encode(),
        'header-string-to-sign.txt': header.sts.encode(),
        'header-signature.txt': header.sig.encode(),
        'query-canonical-request.txt': query.canonical.encode(),
        'query-string-to-sign.txt': query.sts.encode(),
        'query-signature.txt': query.sig.encode(),
    }
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--check', action='store_true',
                    help='compare with the files on disk instead of writing them')
    args = ap.parse_args()

    names = [c['name'] for c in CASES]
    assert len(names) == len(set(names)), 'duplicate case name'
    stale = []
    for c in CASES:
        d = os.path.join(OUT_DIR, c['name'])
        for fname, data in render(c).items():
            path = os.path.join(d, fname)
            if args.check:
                try:
                    with open(path, 'rb') as f:
                        if f.read() != data:
                            stale.append(path)
                except FileNotFoundError:
                    stale.append(path)
            else:
                os.makedirs(d, exist_ok=True)
                with open(path, 'wb') as f:
                    f.write(data)
    if args.check:
        on_disk = set(os.listdir(OUT_DIR)) if os.path.isdir(OUT_DIR) else set()
        stale += sorted(on_disk - set(names))
        if stale:
            sys.exit('out of date:\n  ' + '\n  '.join(stale))
        print('%d cases up to date' % len(CASES))
    else:
        print('wrote %d cases to %s' % (len(CASES), OUT_DIR))


if __name__ == '__main__':
    main()
