#!/usr/bin/env bash
# Builds the shared-data liveness attack set in a temporary folder and runs
# the per-attack-type evaluation on it (liveness/RESULTS.md, issue 17).
# usage: eval-attacks.sh [trustid-lab binary] [output JSON file] [voice-heldout flags]
# The third argument, when given, adds the held-out figures: the
# synthetic-voice model retrained leaving each speaker and the dub's engine
# out (eval-liveness -voice-heldout; "-" for train-synthvoice's default
# corpus flags, or e.g. "-feature-cache /tmp/sv-feat.json -tts-cache /tmp/sv-tts"
# to keep the corpus between runs; the folder of -tts-cache must exist).
# Needs TRUSTID_TESTDATA and TRUSTID_MODELS (deploy/env.sh sets the paths).
set -euo pipefail
lab=${1:-bin/trustid-lab}
out=${2:-}
heldout=${3:-}
tmp=$(mktemp -d -t trustid-attacks-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
nice -n 10 "$lab" make-attacks -out "$tmp"
args=(-manifest "$tmp/manifest.tsv" -v)
if [[ -n "$heldout" ]]; then
	args+=(-voice-heldout "$heldout")
fi
if [[ -n "$out" ]]; then
	nice -n 10 "$lab" eval-liveness "${args[@]}" >"$out"
	echo "JSON written to $out" >&2
else
	nice -n 10 "$lab" eval-liveness "${args[@]}"
fi
