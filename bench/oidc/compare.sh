#!/usr/bin/env bash
# Paired comparison of two trustid binaries on one load test phase: runs
# bench/oidc/run.sh with TRUSTID_BIN alternating between A and B (A, B,
# B, A, A, B, ...: neither always runs first), then prints each run and
# the medians of requests/s, p99 and CPU ms per request. On a shared VM
# the rate of the same binary varies by ±20 % from run to run; alternation
# and medians keep that drift out of the difference.
# Usage: bench/oidc/compare.sh BIN_A BIN_B [rounds] [connections] [seconds]
# PHASES (default refresh_token), REFRESH_SCOPES (default offline_access)
# and REFRESH_TOKENS (default 8000) are passed on to run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
a="$1" b="$2" rounds="${3:-3}" conns="${4:-16}" secs="${5:-10}"
export PHASES="${PHASES:-refresh_token}" REFRESH_SCOPES="${REFRESH_SCOPES:-offline_access}" REFRESH_TOKENS="${REFRESH_TOKENS:-8000}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
run() { # run LABEL BIN
  local r
  r="$(TRUSTID_BIN="$2" bench/oidc/run.sh "$conns" "$secs" 2>&1)"
  local rps p99 cpu
  rps="$(echo "$r" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' | tail -1)"
  p99="$(echo "$r" | sed -n 's/^ *99% *\([0-9.]*\)\(m\?s\).*/\1 \2/p' | tail -1 | awk '{print ($2 == "s") ? $1 * 1000 : $1}')"
  cpu="$(echo "$r" | sed -n 's/.*machine \([0-9.]*\).*/\1/p' | tail -1)"
  if echo "$r" | grep -q "Non-2xx or 3xx responses: [1-9]"; then
    echo "$r" >&2
    echo "compare: $1 had failed responses" >&2
    exit 1
  fi
  printf '%s %s %s %s %s\n' "$1" "$rps" "$p99" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$out"
}
echo "# $(date -u +%FT%TZ) $(nproc) cores; A=$a B=$b; $rounds rounds of $PHASES, $conns connections, ${secs}s"
echo "# binary req/s p99_ms machine_cpu_ms_per_req load"
for i in $(seq 1 "$rounds"); do
  if [ $((i % 2)) -eq 1 ]; then run A "$a"; run B "$b"; else run B "$b"; run A "$a"; fi
done
for x in A B; do
  awk -v x="$x" 'BEGIN {n = 0} $1 == x {r[n] = $2 + 0; p[n] = $3 + 0; c[n] = $4 + 0; n++}
    function med(v, n,   i, j, t) {
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
    }
    END { printf "median %s: %.0f req/s, p99 %.1f ms, machine %.3f ms CPU per request (%d runs)\n", x, med(r, n), med(p, n), med(c, n), n }' "$out"
done
