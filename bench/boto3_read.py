#!/usr/bin/env python3
"""What a Python user would write instead of mounting anything: list a prefix with boto3 and
GET every object with a thread pool, each body read fully into memory and dropped.

    boto3_read.py ENDPOINT BUCKET PREFIX [THREADS]        (default 16 threads)

Credentials and region come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION.
One boto3 client is shared by the threads (clients are thread-safe) with a connection pool as
large as the thread pool, so no thread waits for a connection. Prints one line
"objects=N bytes=B" and exits 1 if any GET failed.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config


def client(endpoint, threads):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=threads))


def keys(s3, bucket, prefix):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"]


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    endpoint, bucket, prefix = argv[:3]
    threads = int(argv[3]) if len(argv) == 4 else 16
    s3 = client(endpoint, threads)

    def get(key):
        return len(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(threads) as pool:
        # A failed GET raises here (the pool still finishes the GETs already queued).
        sizes = list(pool.map(get, list(keys(s3, bucket, prefix))))
    print(f"objects={len(sizes)} bytes={sum(sizes)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:   # noqa: BLE001 - one line on stderr instead of a traceback
        print(f"boto3_read: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
