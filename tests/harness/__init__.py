"""Test harness shared by the integration tests, bench/ and `make demo`.

`tests.harness.minio` starts a throw-away MinIO server on loopback and offers two
independent clients to check results with (`mc` and boto3).
"""
