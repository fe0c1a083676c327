# Sourced by the scripts beside it: as_root and install_debs, which installs (quietly, through
# apt-get as root or through sudo) those of the named Debian packages that are missing.
# The sourcing script defines log() first.

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
		log "need root (or sudo) to run: $*"; return 1; fi
}

install_debs() {
	local missing="" p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	log "installing Debian packages:$missing"
	as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq $missing >/dev/null
}
