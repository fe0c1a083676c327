#!/usr/bin/env bash
# Builds two more FUSE alternatives for the benchmarks into .tools (gitignored), with pinned
# versions (bench/extra_fs.md tells what was tried and how long it takes):
#   - Mountpoint for Amazon S3 as .tools/cargo/bin/mount-s3-lite: bench/mountpoint_launcher/,
#     a launcher around the crates.io library mountpoint-s3-fs 0.11.0 (crates.io's own
#     `mountpoint-s3` is an empty placeholder); its Cargo.lock is the library's published one
#     cut down by cargo to the packages the launcher uses (no version changed).
#   - goofys v0.24.0 as .tools/bin/goofys: its source from the Go module proxy, built with
#     bench/goofys_build/go.mod + go.sum (the release has no go.mod).
# Idempotent: a tool whose inputs have not changed since its last build is not rebuilt.
# Always exits 0: a tool that cannot be built is reported (why, and where the log is) and
# bench/extra_fs.py's extra_reason() then says it is missing.
# Not called by `make bench`. Options (environment): BENCH_EXTRA_JOBS (cargo -j, default 2),
# BENCH_EXTRA_TIMEOUT (seconds per tool, default 2700), BENCH_EXTRA_ONLY (mountpoint|goofys).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tools="$top/.tools"
jobs=${BENCH_EXTRA_JOBS:-2}
limit=${BENCH_EXTRA_TIMEOUT:-2700}
only=${BENCH_EXTRA_ONLY:-}

GOOFYS_MODULE=github.com/kahing/goofys
GOOFYS_VERSION=v0.24.0
MP_CRATE_DIR="$top/bench/mountpoint_launcher"
GOOFYS_MOD_DIR="$top/bench/goofys_build"
# What the mountpoint-s3 crates need to build: fuse3 headers found by pkg-config (fuser),
# cmake and a C compiler (the AWS Common Runtime), libclang (bindgen).
MP_DEB_PKGS="libfuse3-dev pkg-config cmake clang libclang-dev"

log() { printf 'bench-extra-fs: %s\n' "$*" >&2; }

. "$top/scripts/debs.sh"

# The digest of a tool's build inputs; a build leaves it in a stamp file beside its output.
inputs_digest() { cat "$@" | sha256sum | cut -d' ' -f1; }

up_to_date() { # binary stamp digest
	[ -x "$1" ] && [ -f "$2" ] && [ "$(cat "$2")" = "$3" ]
}

build_mountpoint() {
	local bin="$tools/cargo/bin/mount-s3-lite" stamp="$tools/cargo/.mount-s3-lite.inputs"
	local buildlog="$tools/cargo/build.log" digest cargo
	digest=$(inputs_digest "$MP_CRATE_DIR/Cargo.toml" "$MP_CRATE_DIR/Cargo.lock" \
		"$MP_CRATE_DIR/src/main.rs")
	if up_to_date "$bin" "$stamp" "$digest"; then
		log "mountpoint: up to date ($bin)"; return 0
	fi
	cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
	if [ ! -x "$cargo" ]; then
		log "mountpoint: NOT BUILT: cargo is not installed"; return 1
	fi
	if ! install_debs $MP_DEB_PKGS; then
		log "mountpoint: NOT BUILT: could not install $MP_DEB_PKGS"; return 1
	fi
	mkdir -p "$tools/cargo"
	# Slow: it was not done after 35 min on a busy 2-core machine (bench/extra_fs.md).
	log "mountpoint: building mount-s3-lite with mountpoint-s3-fs 0.11.0 (log: $buildlog)"
	local t0=$SECONDS
	if ! timeout "$limit" nice -n 10 "$cargo" install --locked --force --path "$MP_CRATE_DIR" \
		--root "$tools/cargo" --target-dir "$tools/cargo-target" -j "$jobs" >"$buildlog" 2>&1; then
		log "mountpoint: NOT BUILT after $((SECONDS - t0)) s (limit ${limit} s); last lines of $buildlog:"
		tail -n 15 "$buildlog" >&2
		return 1
	fi
	echo "$digest" >"$stamp"
	log "mountpoint: built $bin in $((SECONDS - t0)) s"
}

build_goofys() {
	local bin="$tools/bin/goofys" stamp="$tools/bin/.goofys.inputs" work="$tools/goofys-build"
	local buildlog="$tools/goofys-build.log" digest src
	digest=$(echo "$GOOFYS_VERSION" |
		inputs_digest - "$GOOFYS_MOD_DIR/go.mod" "$GOOFYS_MOD_DIR/go.sum")
	if up_to_date "$bin" "$stamp" "$digest"; then
		log "goofys: up to date ($bin)"; return 0
	fi
	if ! command -v go >/dev/null; then
		log "goofys: NOT BUILT: go is not installed"; return 1
	fi
	mkdir -p "$tools/bin"
	log "goofys: building $GOOFYS_MODULE@$GOOFYS_VERSION (log: $buildlog)"
	local t0=$SECONDS
	# `go install MODULE@VERSION` cannot be used: it looks up the module's version list (for
	# deprecations), which the proxy here refuses, and the release has no go.mod anyway.
	src=$(go mod download -json "$GOOFYS_MODULE@$GOOFYS_VERSION" 2>"$buildlog" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$src" ] || [ ! -d "$src" ]; then
		log "goofys: NOT BUILT: cannot download $GOOFYS_MODULE@$GOOFYS_VERSION:"
		tail -n 5 "$buildlog" >&2
		return 1
	fi
	rm -rf "$work" && mkdir -p "$work" && cp -r "$src/." "$work/" && chmod -R u+w "$work"
	cp "$GOOFYS_MOD_DIR/go.mod" "$GOOFYS_MOD_DIR/go.sum" "$work/"
	if ! (cd "$work" && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 timeout "$limit" \
		nice -n 10 go build -trimpath -ldflags "-X main.Version=$GOOFYS_VERSION" \
		-o "$bin.new" .) >>"$buildlog" 2>&1; then
		log "goofys: NOT BUILT after $((SECONDS - t0)) s; last lines of $buildlog:"
		tail -n 15 "$buildlog" >&2
		return 1
	fi
	mv -f "$bin.new" "$bin"
	echo "$digest" >"$stamp"
	log "goofys: built $bin in $((SECONDS - t0)) s"
}

if [ -z "$only" ] || [ "$only" = mountpoint ]; then build_mountpoint; fi
if [ -z "$only" ] || [ "$only" = goofys ]; then build_goofys; fi
usable=""
[ -x "$tools/cargo/bin/mount-s3-lite" ] && usable="$usable mountpoint"
[ -x "$tools/bin/goofys" ] && usable="$usable goofys"
log "usable:${usable:- none}"
exit 0
