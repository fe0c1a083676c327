#!/usr/bin/env bash
# Installs, idempotently and quietly, everything the build, the tests and the demo need.
# Debian packages through apt-get (as root, or through sudo), MinIO and mc through
# `go install` at pinned commits into .tools/bin, and a Python venv in .tools/venv.
# A second run only checks and returns.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tools="$top/.tools"
mkdir -p "$tools/bin"

# MinIO: the brief pins 9e49d5e7a648 (RELEASE.2025-10-15), but the Go module proxy answers
# "403 This module version is not available" for that commit; this is the newest commit the
# proxy serves (2026-02-12). mc is pinned to its newest proxy version as well.
MINIO_MOD="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
MC_MOD="github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9"

# dataset-fashion-mnist: the MNIST-format data of the TensorFlow example (examples/tf-mnist);
# rsync, git and sqlite3: programs the write-route tests run inside a route; clang: the
# libFuzzer targets (make fuzz); locales: the
# sources from which tests/unit/test_sigv4.c compiles the locales it signs under.
DEB_PKGS="libcurl4-openssl-dev libssl-dev libxml2-dev uthash-dev check libinih-dev pkg-config python3-venv clang clang-tidy cppcheck dataset-fashion-mnist rsync git sqlite3 locales"

log() { printf 'deps: %s\n' "$*" >&2; }

. "$top/scripts/debs.sh"
install_debs $DEB_PKGS

# Toxiproxy (tests/harness/toxiproxy.py: network faults and store latency in front of MinIO,
# for the fault tests and bench/). go install names its binary `server`.
TOXIPROXY_MOD="github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0"
# AWS's mock of the EC2 instance metadata service, for the IMDS credential tests.
EC2_MOCK_MOD="github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@v1.13.0"

go_tool() { # name module [binary go install makes]
	local name=$1 mod=$2 built=${3:-$1} stamp="$tools/bin/.$1.version"
	if [ -x "$tools/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$mod" ]; then return 0; fi
	command -v go >/dev/null || { log "Go is required to build $name"; return 1; }
	log "building $name ($mod); the first time takes a few minutes"
	local tmp
	tmp=$(mktemp -d)
	GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "$mod"
	mv "$tmp/$built" "$tools/bin/$name"
	rmdir "$tmp"
	echo "$mod" >"$stamp"
}
go_tool minio "$MINIO_MOD"
go_tool mc "$MC_MOD"
go_tool toxiproxy-server "$TOXIPROXY_MOD" server
go_tool ec2-metadata-mock "$EC2_MOCK_MOD"

venv="$tools/venv"
reqs=("$top/tests/requirements.txt" "$top/examples/tf-mnist/requirements.txt"
      "$top/examples/pytorch/requirements.txt")
if [ ! -x "$venv/bin/python" ]; then
	log "creating Python venv in .tools/venv"
	python3 -m venv "$venv"
fi
if ! cat "${reqs[@]}" | cmp -s - "$venv/.requirements" 2>/dev/null; then
	log "installing Python requirements (pytest, boto3, numpy, safetensors, tensorflow-cpu, torch, torchvision); the first time takes about 5 minutes and 7 GB"
	"$venv/bin/pip" install -q --disable-pip-version-check "${reqs[@]/#/-r}"
	cat "${reqs[@]}" >"$venv/.requirements"
fi
