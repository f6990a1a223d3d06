#!/usr/bin/env bash
# The server's own time per request, from its access log: the "duration"
# of every "http request" line after byte OFFSET of LOG (the lines a run
# appended), as "p50 p90 p99 p99.9 max" in milliseconds (or "- - - - -"
# when there is none).
#
# Why: wrk runs on the same two cores as the server, PostgreSQL and Redis,
# and its latency includes the time its own threads wait for a core once a
# response has arrived, and the time a request waits in the socket before
# the server reads it. The access log's duration runs from the moment the
# handler chain starts to the moment the response is written: the two side
# by side tell a slow server from a saturated machine.
#
# Usage: bench/oidc/handler-latency.sh LOG [OFFSET]
set -euo pipefail
log="$1" off="${2:-0}"
tail -c +"$((off + 1))" "$log" | grep '"msg":"http request"' | grep -o '"duration":[0-9]*' | cut -d: -f2 | sort -n |
  awk '{ v[NR] = $1 }
    function q(p,   i) { i = int(NR * p); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] / 1e6 }
    END {
      if (NR == 0) { print "- - - - -"; exit }
      printf "%.2f %.2f %.2f %.2f %.2f\n", q(0.5), q(0.9), q(0.99), q(0.999), v[NR] / 1e6
    }'
