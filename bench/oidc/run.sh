#!/usr/bin/env bash
# Load test of the real trustid binary on PostgreSQL + Redis with wrk from
# the same machine: token endpoint (client_credentials), JWKS, discovery.
# Usage: bench/oidc/run.sh [connections] [seconds]
# Needs TRUSTID_POSTGRES_DSN and TRUSTID_REDIS_URL (or the CI defaults below),
# a built bin/trustid (make build) and wrk (deploy/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/env.sh
CONNS="${1:-16}"
SECS="${2:-10}"
export TRUSTID_POSTGRES_DSN="${TRUSTID_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export TRUSTID_REDIS_URL="${TRUSTID_REDIS_URL:-redis://127.0.0.1:6379/0}"
export TRUSTID_DATA_DIR="$(mktemp -d)"
export TRUSTID_LISTEN=127.0.0.1:18080 TRUSTID_ISSUER=http://127.0.0.1:18080
work="$(mktemp -d)"
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work" "$TRUSTID_DATA_DIR"' EXIT

# A fresh schema so the run starts clean and leaves the test database alone.
schema="bench_$$"
base_dsn="$TRUSTID_POSTGRES_DSN"
psql "$base_dsn" -qc "CREATE SCHEMA $schema" >/dev/null
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; psql "$base_dsn" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1; rm -rf "$work" "$TRUSTID_DATA_DIR"' EXIT
sep='?'; case "$TRUSTID_POSTGRES_DSN" in *\?*) sep='&';; esac
export TRUSTID_POSTGRES_DSN="${TRUSTID_POSTGRES_DSN}${sep}search_path=$schema"

out="$(bin/trustid client create -name bench -grant-types client_credentials -scopes openid 2>/dev/null)"
id="$(echo "$out" | sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p')"
secret="$(echo "$out" | sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p')"
bin/trustid serve >"$work/log" 2>&1 & echo $! >"$work/pid"
for _ in $(seq 1 300); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.2; done
if ! curl -sf http://127.0.0.1:18080/healthz >/dev/null; then cat "$work/log" >&2; exit 1; fi

basic="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"
cat >"$work/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## token endpoint, client_credentials, $CONNS connections, ${SECS}s"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$work/token.lua" http://127.0.0.1:18080/oauth2/token | grep -E "Requests/sec|99%|90%|75%|50%|Non-2xx"
echo "## JWKS"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency http://127.0.0.1:18080/oauth2/jwks | grep -E "Requests/sec|99%|90%|75%|50%|Non-2xx"
echo "## discovery"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency http://127.0.0.1:18080/.well-known/openid-configuration | grep -E "Requests/sec|99%|90%|75%|50%|Non-2xx"
