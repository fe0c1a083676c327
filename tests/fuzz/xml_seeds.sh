#!/usr/bin/env bash
# The XML target's seeds are the unit tests' fixtures (tests/unit/data/xml), each behind the
# selector byte of the parser that reads it (see fuzz_xml.c). Usage: xml_seeds.sh OUTDIR
set -euo pipefail
out=$1
mkdir -p "$out"
for f in "$(dirname "$0")"/../unit/data/xml/*.xml; do
	b=$(basename "$f" .xml)
	case $b in
	error-in-200) sel='\004' ;;
	error*) sel='\000' ;;
	list-uploads) sel='\005' ;;
	list-url*) sel='\002' ;;
	list*|billion*) sel='\001' ;;
	initiate*) sel='\003' ;;
	complete* | copy*) sel='\004' ;;
	sts-*) sel='\006' ;;
	*) sel='\001' ;;
	esac
	{ printf "$sel"; cat "$f"; } >"$out/$b"
done
