#!/usr/bin/env bash
# Load test of the real trustid binary on PostgreSQL + Redis with wrk from
# the same machine: token endpoint (client_credentials and refresh_token
# grants), JWKS, discovery.
# Usage: bench/oidc/run.sh [connections] [seconds]
# TRUSTID_BIN picks the server binary (default bin/trustid); TRUSTID_MINT_BIN
# the one that mints the refresh tokens (default bin/trustid-lab, the lab
# binary; the service binary has no bench-tokens). The refresh_token run
# spends one fresh refresh token per request from a pool minted beforehand
# through the real code exchange (trustid-lab bench-tokens, bench-only);
# REFRESH_TOKENS sets the starting pool (default 1000); refresh.lua queues
# the token each response returns, so every request still spends a fresh one.
# REFRESH_SCOPES (default openid,offline_access) are the grants' scopes;
# without openid a refresh returns no new ID token (no RS256 signature).
# RP_ID_TOKEN_ALG (RS256 or ES256) registers the refresh client with that
# id_token_signed_response_alg (default: the CLI's default for a new client,
# ES256 since issue 21; at older commits the provider's oidc.signing_alg).
# SERVER_LOG keeps the server's log in that file.
# PHASES (default: all four) names the runs to make, from client_credentials,
# refresh_token, jwks and discovery.
# Needs TRUSTID_POSTGRES_DSN and TRUSTID_REDIS_URL (or the defaults below; the
# Redis database is emptied, so do not point it at one that holds data),
# a built bin/trustid and bin/trustid-lab (make build) and wrk (deploy/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/env.sh
BIN="${TRUSTID_BIN:-bin/trustid}"
CONNS="${1:-16}"
PHASES="${PHASES:-client_credentials refresh_token jwks discovery}"
SECS="${2:-10}"
export TRUSTID_POSTGRES_DSN="${TRUSTID_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
# Redis database 15 by default, emptied before and after the run: access
# tokens live in Redis, and a run leaves hundreds of thousands of them.
export TRUSTID_REDIS_URL="${TRUSTID_REDIS_URL:-redis://127.0.0.1:6379/15}"
redis-cli -u "$TRUSTID_REDIS_URL" flushdb >/dev/null
export TRUSTID_DATA_DIR="$(mktemp -d)"
export TRUSTID_LISTEN=127.0.0.1:18080 TRUSTID_ISSUER=http://127.0.0.1:18080
work="$(mktemp -d)"
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work" "$TRUSTID_DATA_DIR"' EXIT

# A fresh schema so the run starts clean and leaves the test database alone.
schema="bench_$$"
base_dsn="$TRUSTID_POSTGRES_DSN"
psql "$base_dsn" -qc "CREATE SCHEMA $schema" >/dev/null
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; psql "$base_dsn" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1; redis-cli -u "$TRUSTID_REDIS_URL" flushdb >/dev/null 2>&1; rm -rf "$work" "$TRUSTID_DATA_DIR"' EXIT
sep='?'; case "$TRUSTID_POSTGRES_DSN" in *\?*) sep='&';; esac
export TRUSTID_POSTGRES_DSN="${TRUSTID_POSTGRES_DSN}${sep}search_path=$schema"
# PG_POOL_MAX_CONNS overrides the server's pool size (psql rejects the
# parameter, so it is added here, after the schema was created).
if [ -n "${PG_POOL_MAX_CONNS:-}" ]; then
  export TRUSTID_POSTGRES_DSN="${TRUSTID_POSTGRES_DSN}&pool_max_conns=$PG_POOL_MAX_CONNS"
fi

out="$("$BIN" client create -name bench -grant-types client_credentials -scopes openid 2>/dev/null)"
id="$(echo "$out" | sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p')"
secret="$(echo "$out" | sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p')"
# A confidential relying-party client for the refresh_token grant, and a
# pool of refresh tokens (one per request; a reused token would be refused).
out="$("$BIN" client create -name bench-rp -grant-types authorization_code,refresh_token \
  -scopes openid,offline_access -redirect-uri https://rp.example/cb ${RP_ID_TOKEN_ALG:+-id-token-alg "$RP_ID_TOKEN_ALG"} 2>/dev/null)"
rp_id="$(echo "$out" | sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p')"
rp_secret="$(echo "$out" | sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p')"
ntok="${REFRESH_TOKENS:-1000}"
mint_start=$(date +%s)
TRUSTID_BENCH_CLIENT_SECRET="$rp_secret" "${TRUSTID_MINT_BIN:-bin/trustid-lab}" bench-tokens -i-know-this-is-a-benchmark \
  -client "$rp_id" -redirect-uri https://rp.example/cb -scopes "${REFRESH_SCOPES:-openid,offline_access}" -n "$ntok" -out "$work/refresh.txt" 2>"$work/mint.log" \
  || { cat "$work/mint.log" >&2; exit 1; }
echo "# minted $(wc -l <"$work/refresh.txt") refresh tokens in $(( $(date +%s) - mint_start ))s" >&2

srvlog="${SERVER_LOG:-$work/log}"
"$BIN" serve >"$srvlog" 2>&1 & echo $! >"$work/pid"
for _ in $(seq 1 300); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.2; done
if ! curl -sf http://127.0.0.1:18080/healthz >/dev/null; then cat "${SERVER_LOG:-$work/log}" >&2; exit 1; fi

basic="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"
cat >"$work/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
# load runs wrk and prints the percentiles, the rate and the error counts
# (Non-2xx is printed even when zero, so a failing run cannot pass unseen).
# It also prints the CPU time per request of trustid, PostgreSQL (all its
# processes), Redis and the whole machine (every process, kernel included),
# from /proc: unlike the rate, that cost hardly depends on what else runs.
load() {
  local before after lb
  lb="$(stat -c %s "$srvlog")"
  before="$(cpu_ticks)"
  local wrk_before wrk_after
  times >"$work/times"; wrk_before="$(children_ms)"
  wrk "$@" >"$work/wrk.out"
  times >"$work/times"; wrk_after="$(children_ms)"
  after="$(cpu_ticks)"
  grep -E "Requests/sec|^ +(50|75|90|99)%|Non-2xx|Socket errors|refresh tokens:" "$work/wrk.out"
  grep -q "Non-2xx" "$work/wrk.out" || echo "  Non-2xx or 3xx responses: 0"
  local n
  n="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk.out")"
  awk -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" -v b="$before" -v a="$after" -v w="$((wrk_after - wrk_before))" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    if (n == 0) exit
    printf "  CPU ms per request: trustid %.3f, postgres %.3f, redis %.3f, wrk %.3f, machine %.3f\n",
      (y[1]-x[1])*1000/hz/n, (y[2]-x[2])*1000/hz/n, (y[3]-x[3])*1000/hz/n, w/n, (y[4]-x[4])*1000/hz/n
  }'
  # The server's own time per request (bench/oidc/handler-latency.sh): wrk's
  # percentiles above also hold the waits of its threads for a core.
  bench/oidc/handler-latency.sh "$srvlog" "$lb" | awk '{ printf "  handler ms (access log): p50 %s, p90 %s, p99 %s, p99.9 %s, max %s\n", $1, $2, $3, $4, $5 }'
}
# children_ms prints the user+system CPU milliseconds used so far by the
# shell's finished children (wrk among them), from the output of the times
# builtin (run in this shell, not in a subshell, whose children differ).
children_ms() {
  awk 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60000 + p[2] * 1000 }
    printf "%d\n", t
  }' "$work/times"
}
# cpu_ticks prints the user+system clock ticks used so far by trustid,
# PostgreSQL, Redis and (non-idle) the whole machine.
cpu_ticks() {
  local sum
  sum() { local t=0 p; for p in "$@"; do
      t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
  echo "$(sum "$(cat "$work/pid")") $(sum $(pgrep -x postgres)) $(sum $(pgrep -x redis-server)) \
$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)"
}
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) (binary $BIN) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)${PG_POOL_MAX_CONNS:+, pool_max_conns=$PG_POOL_MAX_CONNS}"
phase() { case " $PHASES " in *" $1 "*) return 0;; esac; return 1; }
if phase client_credentials; then
echo "## token endpoint, client_credentials, $CONNS connections, ${SECS}s"
load -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$work/token.lua" http://127.0.0.1:18080/oauth2/token
fi
if phase refresh_token; then
echo "## token endpoint, refresh_token (scopes ${REFRESH_SCOPES:-openid,offline_access}), $CONNS connections, ${SECS}s"
rp_basic="$(printf '%s:%s' "$rp_id" "$rp_secret" | base64 -w0)"
load -t2 -c"$CONNS" -d"${SECS}s" --latency -s bench/oidc/refresh.lua http://127.0.0.1:18080/oauth2/token \
  -- "$work/refresh.txt" 2 "$rp_basic"
fi
if phase jwks; then
echo "## JWKS"
load -t2 -c"$CONNS" -d"${SECS}s" --latency http://127.0.0.1:18080/oauth2/jwks
fi
if phase discovery; then
echo "## discovery"
load -t2 -c"$CONNS" -d"${SECS}s" --latency http://127.0.0.1:18080/.well-known/openid-configuration
fi
echo "trustid peak RSS: $(awk '/^VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$(cat "$work/pid")/status")"
# How the rotations updated the token table (heap-only updates add no index
# entries; see migration 00004).
sleep 1 # the statistics of the last transactions reach the view
psql "$base_dsn" -Atc "SELECT 'oauth_records updates: ' || n_tup_upd || ', heap-only: ' || n_tup_hot_upd || ', inserts: ' || n_tup_ins || ', table with indexes: ' || pg_size_pretty(pg_total_relation_size(relid)) FROM pg_stat_user_tables WHERE schemaname = '$schema' AND relname = 'oauth_records'"
