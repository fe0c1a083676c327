#!/usr/bin/env bash
# make stress: the integration suite (or the tests named in STRESS_TESTS) ROUNDS times in a
# row while stress-ng keeps both cores busy, to find tests that fail at random. Every round
# runs to its end; the exit status is non-zero if any round failed, and the last line says
# how many rounds were green. Logs: build/stress/round-N.log.
#   scripts/stress.sh [ROUNDS]     (default 5; STRESS_TESTS="tests/integration/x.py ...")
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
rounds=${1:-5}
tests=${STRESS_TESTS:-tests/integration}
log() { printf 'stress: %s\n' "$*" >&2; }
. "$top/scripts/debs.sh"
install_debs stress-ng
mkdir -p build/stress
# Two CPU hogs (the machine has two cores), at the lowest priority the tests still feel.
stress-ng --cpu 2 --cpu-method matrixprod --timeout 0 --quiet &
hog=$!
trap 'kill "$hog" 2>/dev/null; wait "$hog" 2>/dev/null || true' EXIT
green=0
for ((i = 1; i <= rounds; i++)); do
	start=$SECONDS
	if .tools/venv/bin/python -m pytest -q -p no:cacheprovider $tests >"build/stress/round-$i.log" 2>&1; then
		green=$((green + 1))
		log "round $i/$rounds green in $((SECONDS - start)) s: $(tail -1 "build/stress/round-$i.log")"
	else
		log "round $i/$rounds FAILED in $((SECONDS - start)) s: $(grep -E '^(FAILED|ERROR)' "build/stress/round-$i.log" | tr '\n' ' ')"
	fi
done
log "$green/$rounds rounds green under stress-ng --cpu 2 ($tests)"
[ "$green" = "$rounds" ]
