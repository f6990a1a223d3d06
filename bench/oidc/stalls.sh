#!/usr/bin/env bash
# Token-endpoint latency as the server saw it, from a log kept with
# SERVER_LOG=file bench/oidc/run.sh: the count, p50, p99 and max of the
# access-log durations of /oauth2/token, then each 100 ms window in which a
# request took longer than THRESHOLD_MS (default 15), with its request
# count, its slowest request and how many exceeded the threshold. Windows
# where all connections are slow at once point at a stall shared by every
# request (the serial rotation stage, the machine), not at one request.
# Usage: bench/oidc/stalls.sh SERVER_LOG [THRESHOLD_MS]
set -euo pipefail
log="${1:?usage: stalls.sh SERVER_LOG [THRESHOLD_MS]}"
thr="${2:-15}"
pairs="$(mktemp)"; trap 'rm -f "$pairs"' EXIT
# "HH:MM:SS.d ms" per token request (POSIX awk: mawk on Debian).
grep '"msg":"http request"' "$log" | grep '/oauth2/token' | awk '
  match($0, /"time":"[^"]*"/) { t = substr($0, RSTART + 19, 10) }
  match($0, /"duration":[0-9]+/) { printf "%s %.3f\n", t, substr($0, RSTART + 11, RLENGTH - 11) / 1e6 }' >"$pairs"
n=$(wc -l <"$pairs")
[ "$n" -gt 0 ] || { echo "no token requests in $log" >&2; exit 1; }
sort -k2,2n "$pairs" | awk -v n="$n" '
  NR == int(n * 0.5) + 1 { p50 = $2 } NR == int(n * 0.99) + 1 { p99 = $2 } { max = $2 }
  END { printf "%d token requests: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", n, p50, p99, max }'
sort -k1,1 "$pairs" | awk -v thr="$thr" '
  function flush() { if (slow > 0) printf "%s  %4d requests, max %5.1f ms, %3d over %s ms\n", w, c, mx, slow, thr }
  $1 != w { if (w != "") flush(); w = $1; c = 0; mx = 0; slow = 0 }
  { c++; if ($2 + 0 > mx) mx = $2 + 0; if ($2 + 0 > thr) slow++ }
  END { flush() }'
