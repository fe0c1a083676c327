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
	log "installing the benchmark's Python requirements (matplotlib, s3torchconnector)"
	"$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
	cp "$req" "$venv/.bench-requirements"
fi
