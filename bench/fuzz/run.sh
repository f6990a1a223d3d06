#!/usr/bin/env bash
# Runs every Go fuzz target of the repository, one after another, for
# FUZZTIME each (default 60s), and prints a markdown table: target,
# package, time, execs, new interesting inputs (corpus total), crashes.
# Targets are found by listing `func FuzzX(f *testing.F)` in *_test.go.
#
#   bench/fuzz/run.sh                      # all targets, 60s each
#   FUZZTIME=10s FUZZ='Register|DPoP' bench/fuzz/run.sh
#   FUZZPARALLEL=1 bench/fuzz/run.sh       # fuzz workers per target (default: GOMAXPROCS)
#
# A crash leaves its input under the package's testdata/fuzz/FuzzX/ (go
# test writes it there); commit it with the fix as a regression seed: the
# seeds run in every plain `go test`. Logs go to FUZZLOGS (default a
# temporary directory). Exits 1 when a target crashed. Go's fuzzer does
# not time out a slow input: a target whose execs stop growing for 20 s
# (longer than FUZZMINTIME, default 10s, the minimization of an interesting
# input) is listed as stalled: reproduce it and fix it. A target that
# skips (its models or data are missing) is listed as skipped.
# Run `. deploy/env.sh` first (make fuzz does).
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZTIME=${FUZZTIME:-60s}
FUZZ=${FUZZ:-.}
FUZZLOGS=${FUZZLOGS:-$(mktemp -d -t trustid-fuzz.XXXXXX)}
mkdir -p "$FUZZLOGS"
par=()
if [ -n "${FUZZPARALLEL:-}" ]; then par=(-parallel "$FUZZPARALLEL"); fi

# package directory and target name, one pair per line, sorted.
targets=$(git grep --untracked -n -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' -- '*_test.go' |
	sed -E 's#^(.*)/[^/]*_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' |
	grep -E " Fuzz.*(${FUZZ})" | sort)
if [ -z "$targets" ]; then
	echo "no fuzz targets match $FUZZ" >&2
	exit 1
fi

rows=()
failed=0
n=$(wc -l <<<"$targets")
i=0
while read -r dir name; do
	i=$((i + 1))
	log="$FUZZLOGS/$(tr / _ <<<"$dir")_$name.log"
	echo "[$i/$n] $name ./$dir ($FUZZTIME)" >&2
	status=0
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINTIME:-10s}" "${par[@]}" "./$dir" >"$log" 2>&1 || status=$?
	# The last progress line: "fuzz: elapsed: 1m0s, execs: 123 (2/sec), new interesting: 4 (total: 20)".
	last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	# The line's own rate is of its last 3 s; the mean is execs / elapsed.
	secs=$(sed -nE 's/^fuzz: elapsed: ([0-9hms.]+),.*/\1/p' <<<"$last" |
		awk '{ t = 0; s = $0; while (match(s, /^[0-9.]+[hms]/)) { v = substr(s, 1, RLENGTH - 1); u = substr(s, RLENGTH, 1);
			t += v * (u == "h" ? 3600 : u == "m" ? 60 : 1); s = substr(s, RLENGTH + 1) } print t }')
	rate=""
	if [ -n "$execs" ] && [ -n "$secs" ] && [ "$secs" != 0 ]; then rate=$((execs / ${secs%.*})); fi
	newi=$(sed -nE 's/.*new interesting: ([0-9]+) \(total: ([0-9]+)\).*/\1 (total \2)/p' <<<"$last")
	crashes=0
	note=""
	# A worker stuck on one input shows as progress lines whose execs stop
	# growing (workers report every 100 ms, and after a minimization).
	stall=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | sed -nE 's/^fuzz: elapsed: ([0-9hms.]+), execs: ([0-9]+).*/\1 \2/p' |
		awk '{ t = 0; s = $1; while (match(s, /^[0-9.]+[hms]/)) { v = substr(s, 1, RLENGTH - 1); u = substr(s, RLENGTH, 1);
			t += v * (u == "h" ? 3600 : u == "m" ? 60 : 1); s = substr(s, RLENGTH + 1) }
			if ($2 != e) { e = $2; since = t } else if (t - since > max) max = t - since }
			END { print max + 0 }')
	if [ "$status" -eq 0 ] && [ "${stall:-0}" -ge 20 ]; then
		crashes="0, stalled"
		note=" (no progress for ${stall}s: a slow input or a hang; see $log)"
	fi
	if [ "$status" -eq 0 ] && [ -z "$last" ]; then
		crashes="skipped"
		note=" (did not fuzz, e.g. models or data missing: see $log)"
	fi
	if [ "$status" -ne 0 ]; then
		failed=1
		if grep -q 'Failing input written to' "$log"; then
			crashes=1
			note=" ($(sed -nE 's/.*Failing input written to (.*)/\1/p' "$log" | head -n 1))"
		else
			crashes="error"
			note=" (see $log)"
		fi
	fi
	rows+=("| $name | $dir | $FUZZTIME | ${execs:-?} (${rate:-?}/s) | ${newi:-?} | $crashes$note |")
done <<<"$targets"

echo "| target | package | time | execs | new interesting (corpus) | crashes |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "logs: $FUZZLOGS" >&2
exit "$failed"
