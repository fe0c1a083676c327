#!/usr/bin/env bash
# What `make bench` needs beyond scripts/deps.sh: the alternatives we compare against
# (s3fs-fuse, rclone), the load generators (fio, GNU parallel), and matplotlib for the chart
# (into the project venv). Idempotent; a second run only checks and returns.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
venv="$top/.tools/venv"

DEB_PKGS="s3fs rclone fio parallel fuse3 time"

log() { printf 'bench-deps: %s\n' "$*" >&2; }

. "$top/scripts/debs.sh"
install_debs $DEB_PKGS

req="$top/bench/requirements.txt"
if ! cmp -s "$req" "$venv/.bench-requirements" 2>/dev/null; then
	log "installing the benchmark's Python requirements (matplotlib)"
	"$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
	cp "$req" "$venv/.bench-requirements"
fi

# Toxiproxy (bench/tree_save.py: a write route against MinIO behind 10 ms of latency), pinned,
# built with `go install` as .tools/bin/toxiproxy-server (go install names it `server`).
TOXIPROXY_MOD="github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0"
toxi_bin="$top/.tools/bin/toxiproxy-server" toxi_stamp="$top/.tools/bin/.toxiproxy-server.version"
if ! [ -x "$toxi_bin" ] || [ "$(cat "$toxi_stamp" 2>/dev/null)" != "$TOXIPROXY_MOD" ]; then
	command -v go >/dev/null || { log "Go is required to build toxiproxy-server"; exit 1; }
	log "building toxiproxy-server ($TOXIPROXY_MOD)"
	toxi_tmp=$(mktemp -d)
	GOBIN="$toxi_tmp" GOFLAGS=-buildvcs=false go install "$TOXIPROXY_MOD"
	mkdir -p "$top/.tools/bin"
	mv "$toxi_tmp/server" "$toxi_bin"
	rmdir "$toxi_tmp"
	echo "$TOXIPROXY_MOD" >"$toxi_stamp"
fi
