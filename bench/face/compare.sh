#!/usr/bin/env bash
# Paired comparison of 1:1 face verification (decode to score, 640x480 JPEG,
# one worker) between an older commit and this tree: builds bench/face at
# both, runs them alternately (A, B, B, A, A, B, ...: neither always runs
# first) and prints each run and the medians of wall p50, wall p99 and the
# thread CPU p50 per verification, with B/A ratios. On a shared machine
# the same binary varies from run to run; alternation and medians keep
# that drift out of the difference.
# Usage: bench/face/compare.sh [BASE_COMMIT] [rounds] [verifications per run]
# Extra arguments for this tree's binary only (e.g. -runtime opencv,
# -threads 2) go in B_ARGS. Needs `. deploy/env.sh` (TRUSTID_MODELS,
# TRUSTID_TESTDATA, the cgo flags).
set -euo pipefail
cd "$(dirname "$0")/../.."
base="${1:-82a3803}" rounds="${2:-3}" n="${3:-60}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/base"
git archive "$base" | tar -x -C "$tmp/base"
(cd "$tmp/base" && go build -o "$tmp/A" ./bench/face)
go build -o "$tmp/B" ./bench/face
out="$tmp/runs"
# field JSON NAME: the first value of "NAME" in the report (the one-worker run).
field() { sed -n "s/^ *\"$2\": \([0-9.]*\).*/\1/p" "$1" | head -1; }
run() { # run LABEL BIN ARGS...
  local label="$1" bin="$2" r="$tmp/report.json"
  shift 2
  "$bin" -workers 1 -n "$n" "$@" >"$r"
  printf '%s %s %s %s %s\n' "$label" "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$(field "$r" cpu_p50_ms)" \
    "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$out"
}
read -r -a bargs <<<"${B_ARGS:-}"
echo "# $(date -u +%FT%TZ) $(nproc) cores; A=$base B=$(git describe --always --dirty --abbrev=7) ${B_ARGS:-}; $rounds rounds of $n verifications"
echo "# binary wall_p50_ms wall_p99_ms cpu_p50_ms load1"
for i in $(seq 1 "$rounds"); do
  if [ $((i % 2)) -eq 1 ]; then
    run A "$tmp/A"; run B "$tmp/B" "${bargs[@]}"
  else
    run B "$tmp/B" "${bargs[@]}"; run A "$tmp/A"
  fi
done
awk 'function med(v, n,   i, j, t) {
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
    }
    { k = $1; i = n[k]++; p50[k, i] = $2; p99[k, i] = $3; cpu[k, i] = $4 }
    END {
      for (x = 0; x < 2; x++) {
        k = x ? "B" : "A"
        for (i = 0; i < n[k]; i++) { a[i] = p50[k, i]; b[i] = p99[k, i]; c[i] = cpu[k, i] }
        m50[k] = med(a, n[k]); m99[k] = med(b, n[k]); mc[k] = med(c, n[k])
        printf "median %s: wall p50 %.2f ms, p99 %.2f ms, CPU p50 %.2f ms (%d runs)\n", k, m50[k], m99[k], mc[k], n[k]
      }
      printf "B/A: wall p50 %.2f, CPU p50 %.2f\n", m50["B"] / m50["A"], mc["B"] / mc["A"]
    }' "$out"
