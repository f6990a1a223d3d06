#!/usr/bin/env bash
# Builds the shared-data liveness attack set in a temporary folder and runs
# the per-attack-type evaluation on it (liveness/RESULTS.md, issue 17).
# usage: eval-attacks.sh [trustid-lab binary] [output JSON file]
# Needs TRUSTID_TESTDATA and TRUSTID_MODELS (deploy/env.sh sets the paths).
set -euo pipefail
lab=${1:-bin/trustid-lab}
out=${2:-}
tmp=$(mktemp -d -t trustid-attacks-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
nice -n 10 "$lab" make-attacks -out "$tmp"
if [[ -n "$out" ]]; then
	nice -n 10 "$lab" eval-liveness -manifest "$tmp/manifest.tsv" -v >"$out"
	echo "JSON written to $out" >&2
else
	nice -n 10 "$lab" eval-liveness -manifest "$tmp/manifest.tsv" -v
fi
