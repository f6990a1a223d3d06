#!/usr/bin/env bash
# Paired comparison of two trustid-lab binaries on the liveness decision
# latency (#21): runs `LAB eval-liveness -parts latency -latency-runs RUNS`
# with A and B alternating (A, B, B, A, ...: neither always runs first) and
# prints, per run, the wall p50/p99 and CPU p50 of one whole decision on a
# 3 s GRID clip, the per-stage CPU the binary reports, the load average and
# the commit; then the medians per binary. The ratio of the medians is the
# figure to quote on a shared VM (absolutes drift by 10-20 % with the load).
# Usage: bench/liveness/compare.sh LAB_A LAB_B [rounds] [runs]
# Needs TRUSTID_MODELS and TRUSTID_TESTDATA (. deploy/env.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
a="$1" b="$2" rounds="${3:-2}" runs="${4:-20}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
run() { # run LABEL BIN
  "$2" eval-liveness -parts latency -latency-runs "$runs" 2>/dev/null | python3 -c '
import json, sys
label = sys.argv[1]
l = json.load(sys.stdin)["latency"]
stages = " ".join("%s=%s" % (k.replace("_cpu_ms", ""), v) for k, v in sorted(l.get("cpu_breakdown_ms", {}).items()))
print(label, l["wall_p50_ms"], l.get("wall_p99_ms", l.get("wall_p90_ms")), l["cpu_p50_ms"], l["load_average"].split()[0],
      l.get("commit", "?").split()[0], stages)
' "$1" | tee -a "$out"
}
echo "# $(date -u +%FT%TZ) $(nproc) cores; A=$a B=$b; $rounds rounds of $runs decisions each"
echo "# binary wall_p50_ms wall_p99_ms(p90 if the binary has no p99) cpu_p50_ms load commit stage_cpu_ms..."
for i in $(seq 1 "$rounds"); do
  if [ $((i % 2)) -eq 1 ]; then run A "$a"; run B "$b"; else run B "$b"; run A "$a"; fi
done
for x in A B; do
  awk -v x="$x" 'BEGIN {n = 0} $1 == x {w[n] = $2 + 0; p[n] = $3 + 0; c[n] = $4 + 0; n++}
    function med(v, n,   i, j, t) {
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
    }
    END { printf "median %s: wall p50 %.0f ms, p99 %.0f ms, CPU %.0f ms per decision (%d runs)\n", x, med(w, n), med(p, n), med(c, n), n }' "$out"
done
