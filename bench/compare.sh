#!/usr/bin/env bash
# Paired benchmark of this checkout against an older commit, in one run:
# the old trustid is built in a temporary git worktree, both servers run
# side by side (each on its own PostgreSQL schema, Redis database and port),
# and every operation is measured on both in alternation (A B, B A, ...),
# so a change reads as a ratio new/old pair by pair, not as two absolutes
# taken minutes apart on a machine whose speed drifts.
#
# Usage: bench/compare.sh [OLD_COMMIT] [rounds] [connections] [seconds]
#   OLD_COMMIT  default 82a3803 (the commit issue 21 measured against)
#   rounds      default 3; connections default 16; seconds default 10
#
# OIDC operations (OPS, default all four): client_credentials (token
# endpoint), refresh_es256 and refresh_rs256 (refresh_token grant, scopes
# openid,offline_access, so each refresh signs a new ID token with the
# relying party's registered id_token_signed_response_alg; a fresh refresh
# token per request, see bench/oidc/refresh.lua), jwks. Per run it prints
# req/s, wall p50/p99 (wrk), the CPU ms per request of the server under
# test, the PostgreSQL processes working for it (its backends and the
# auxiliary processes), Redis (shared with anything else using it), wrk
# and the whole machine (from /proc; only the first four are meaningful
# while other jobs run), the
# load average, non-2xx and the server's own p99 from its access log
# (bench/oidc/handler-latency.sh: wrk's p99 also holds the waits of its
# threads for one of the two cores); then per operation the medians of
# each side and the ratio new/old of every pair.
#
# EXTRA (optional, after OIDC): "face" runs `go run ./bench/face -n FACE_N`
# (default 60, one worker) in both trees, alternating; "liveness" runs the
# liveness decision latency (`eval-liveness -parts latency`, of trustid at
# older commits, trustid-lab since) with each side's binary. Both need the
# models (TRUSTID_MODELS) and the test data (TRUSTID_TESTDATA).
#
# Other settings: SETTLE=0 (no checkpoint and vacuum before each run; see
# settle below), REFRESH_TOKENS (refresh tokens minted per relying party
# and side, default 1000; the pool rotates and is carried from run to run),
# NEW_BIN / NEW_LAB (use these binaries instead of building this checkout),
# BENCH_CACHE (where built old binaries are kept by commit, default
# ~/.cache/trustid-bench), TRUSTID_POSTGRES_DSN (default the test database;
# a schema per side is created and dropped), REDIS_URL_BASE (default
# redis://127.0.0.1:6379; databases 13 (old) and 14 (new) are emptied).
# Needs wrk, psql, redis-cli, curl and Go.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
. deploy/env.sh
old_ref="${1:-82a3803}" rounds="${2:-3}" conns="${3:-16}" secs="${4:-10}"
OPS="${OPS:-client_credentials refresh_es256 refresh_rs256 jwks}"
EXTRA="${EXTRA:-}"
ntok="${REFRESH_TOKENS:-1000}"
cache="${BENCH_CACHE:-$HOME/.cache/trustid-bench}"
base_dsn="${TRUSTID_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
redis_base="${REDIS_URL_BASE:-redis://127.0.0.1:6379}"
for t in wrk psql redis-cli curl go git; do
  command -v "$t" >/dev/null || { echo "compare: $t is required" >&2; exit 2; }
done

work="$(mktemp -d /tmp/trustid-compare.XXXXXX)"
oldtree="$work/old-tree"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for s in old new; do
    [ -f "$work/$s.schema" ] && psql "$base_dsn" -qc "DROP SCHEMA $(cat "$work/$s.schema") CASCADE" >/dev/null 2>&1 || true
    [ -f "$work/$s.redis" ] && redis-cli -u "$(cat "$work/$s.redis")" flushdb >/dev/null 2>&1 || true
  done
  [ -d "$oldtree" ] && git worktree remove --force "$oldtree" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

old_sha="$(git rev-parse --verify "$old_ref^{commit}")"
new_sha="$(git rev-parse HEAD)"
new_desc="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!models' 2>/dev/null || echo '+dirty')"
old_desc="$(git rev-parse --short "$old_sha")"

# --- binaries ---------------------------------------------------------------
log() { echo "# $*" >&2; }
mkdir -p "$work/new" "$cache/$old_sha"
if [ -n "${NEW_BIN:-}" ]; then cp "$NEW_BIN" "$work/new/trustid"; else
  log "building trustid at $new_desc"; go build -o "$work/new/trustid" ./cmd/trustid; fi
if [ -n "${NEW_LAB:-}" ]; then cp "$NEW_LAB" "$work/new/trustid-lab"; else
  log "building trustid-lab at $new_desc"; go build -o "$work/new/trustid-lab" ./cmd/trustid-lab; fi
need_old_tree=0
case " $EXTRA " in *" face "*|*" liveness "*) need_old_tree=1;; esac
if [ ! -x "$cache/$old_sha/trustid" ] || [ "$need_old_tree" = 1 ]; then
  git worktree add --detach "$oldtree" "$old_sha" >/dev/null 2>&1
  ln -sfn "$TRUSTID_MODELS" "$oldtree/models"
fi
if [ ! -x "$cache/$old_sha/trustid" ]; then
  log "building trustid at $old_desc (worktree $oldtree; kept in $cache/$old_sha)"
  (cd "$oldtree" && go build -o "$cache/$old_sha/trustid.tmp" ./cmd/trustid) && mv "$cache/$old_sha/trustid.tmp" "$cache/$old_sha/trustid"
fi
mkdir -p "$work/old" && cp "$cache/$old_sha/trustid" "$work/old/trustid"

# mint_bin SIDE: the binary that has bench-tokens: the side's own trustid
# (older commits had it in the service binary), else the new trustid-lab.
mint_bin() {
  local help; help="$("$work/$1/trustid" bench-tokens -h 2>&1 || true)"
  if [[ "$help" == *i-know-this-is-a-benchmark* ]]; then echo "$work/$1/trustid"
  else echo "$work/new/trustid-lab"; fi
}

# --- servers ------------------------------------------------------------------
# side_env SIDE runs the rest of the line with that side's environment.
side_env() {
  local s="$1"; shift
  env TRUSTID_POSTGRES_DSN="$(cat "$work/$s.dsn")" TRUSTID_REDIS_URL="$(cat "$work/$s.redis")" \
    TRUSTID_DATA_DIR="$work/$s.data" TRUSTID_LISTEN="127.0.0.1:$(cat "$work/$s.port")" \
    TRUSTID_ISSUER="http://127.0.0.1:$(cat "$work/$s.port")" "$@"
}
exec_side() {
  local s="$1"; shift
  exec env TRUSTID_POSTGRES_DSN="$(cat "$work/$s.dsn")" TRUSTID_REDIS_URL="$(cat "$work/$s.redis")" \
    TRUSTID_DATA_DIR="$work/$s.data" TRUSTID_LISTEN="127.0.0.1:$(cat "$work/$s.port")" \
    TRUSTID_ISSUER="http://127.0.0.1:$(cat "$work/$s.port")" "$@"
}
field() { sed -n 's/.*"'"$1"'": *"\([^"]*\)".*/\1/p'; }
setup_side() { # SIDE PORT REDISDB
  local s="$1" port="$2" db="$3" schema="bench_cmp_${1}_$$"
  echo "$schema" >"$work/$s.schema"
  echo "$port" >"$work/$s.port"
  echo "$redis_base/$db" >"$work/$s.redis"
  mkdir -p "$work/$s.data"
  redis-cli -u "$redis_base/$db" flushdb >/dev/null
  psql "$base_dsn" -qc "CREATE SCHEMA $schema" >/dev/null
  local sep='?'; case "$base_dsn" in *\?*) sep='&';; esac
  echo "${base_dsn}${sep}search_path=$schema" >"$work/$s.dsn"
  local bin="$work/$s/trustid" out
  out="$(side_env "$s" "$bin" client create -name bench -grant-types client_credentials -scopes openid 2>/dev/null)"
  printf '%s:%s' "$(echo "$out" | field client_id)" "$(echo "$out" | field client_secret)" | base64 -w0 >"$work/$s.cc"
  local mint; mint="$(mint_bin "$s")"
  for alg in ES256 RS256; do
    out="$(side_env "$s" "$bin" client create -name "bench-rp-$alg" -grant-types authorization_code,refresh_token \
      -scopes openid,offline_access -redirect-uri https://rp.example/cb -id-token-alg "$alg" 2>/dev/null)"
    local id secret; id="$(echo "$out" | field client_id)" secret="$(echo "$out" | field client_secret)"
    [ -n "$id" ] || { echo "compare: $s: client create failed: $out" >&2; exit 1; }
    printf '%s:%s' "$id" "$secret" | base64 -w0 >"$work/$s.rp-$alg"
    side_env "$s" env TRUSTID_BENCH_CLIENT_SECRET="$secret" "$mint" bench-tokens -i-know-this-is-a-benchmark \
      -client "$id" -redirect-uri https://rp.example/cb -scopes openid,offline_access -n "$ntok" \
      -out "$work/$s.tokens-$alg" 2>"$work/$s.mint.log" || { cat "$work/$s.mint.log" >&2; exit 1; }
  done
  # exec: $! is then the server itself, not a subshell around it.
  (exec_side "$s" "$bin" serve >"$work/$s.log" 2>&1) &
  local pid=$!
  pids+=("$pid"); echo "$pid" >"$work/$s.pid"
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/$s.log" >&2; exit 1; }
  log "$s ($([ "$s" = old ] && echo "$old_desc" || echo "$new_desc")): serving on :$port, minted with $(basename "$mint"), $(wc -l <"$work/$s.tokens-ES256") + $(wc -l <"$work/$s.tokens-RS256") refresh tokens"
}
log "$(date -u +%FT%TZ) setting up old ($old_desc) and new ($new_desc), load $(cut -d' ' -f1-3 /proc/loadavg)"
setup_side old 18081 13
setup_side new 18082 14

# --- measuring ------------------------------------------------------------------
# snap SIDE prints "what pid ticks" (user+system clock ticks) for the
# side's server, the PostgreSQL processes that work for it (its own
# backends, found by the client ports of its connections, and the
# server-wide auxiliary processes: WAL writer, checkpointer, ...), Redis,
# and "machine 0 ticks" (non-idle, every process and the kernel). Other
# jobs' PostgreSQL backends are left out; Redis is one process for all.
snap() {
  local pid; pid="$(cat "$work/$1.pid")"
  echo "server $pid $(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
  local ports; ports="$(ss -Htn state established '( dport = :5432 )' -p 2>/dev/null \
    | awk -v p="pid=$pid," 'index($0, p) { n = split($3, a, ":"); printf "%s%s", sep, a[n]; sep = "," }')"
  local q="SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
  [ -n "$ports" ] && q="$q OR client_port IN ($ports)"
  local p
  for p in $(psql "$base_dsn" -Atc "$q" 2>/dev/null); do
    echo "postgres $p $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0)"
  done
  for p in $(pgrep -x redis-server); do echo "redis $p $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0)"; done
  echo "machine 0 $(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)"
}
children_ms() { awk 'NR == 2 { t = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60000 + p[2] * 1000 }
    printf "%d\n", t }' "$work/times"; }
ms() { awk '{v = $1; u = $1; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
  if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.2f", v}'; }
# settle (unless SETTLE=0) leaves no background work of the previous run
# to the next: a checkpoint (its dirty pages written now, not during the
# next run), a vacuum of both sides' tables (not an autovacuum worker
# starting mid-run on the rows a refresh run inserts and updates, 3-4k a
# second), then 2 s for the load to settle. Without it, back-to-back
# 20 s refresh runs measured a p99 of 22-42 ms for both binaries while the
# same run alone (bench/oidc/run.sh) measured 10.8 ms. It does not remove
# every tail: with it, one run in two to four still reached 23-54 ms on
# either binary while the handler's p99 stayed 7-9 ms (2026-12-07, Milan-like
# VM, bench/reports/2026-12-07-issue21-refresh20s-567c7d5-vs-82a3803-milan.txt).
settle() {
  [ "${SETTLE:-1}" = 0 ] && return
  local s t
  psql "$base_dsn" -qc "CHECKPOINT" >/dev/null 2>&1 || true
  for s in old new; do
    for t in $(psql "$base_dsn" -Atc "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = '$(cat "$work/$s.schema")'"); do
      psql "$base_dsn" -qc "VACUUM $t" >/dev/null 2>&1 || true
    done
  done
  sleep 2
}
# run_op SIDE OP: one wrk run; appends "op side rps p50 p99 trustid pg redis wrk machine load non2xx" to results.
run_op() {
  local s="$1" op="$2" port; port="$(cat "$work/$s.port")"
  local url="http://127.0.0.1:$port" args=()
  case "$op" in
    client_credentials)
      printf 'wrk.method = "POST"\nwrk.body = "grant_type=client_credentials"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\nwrk.headers["Authorization"] = "Basic %s"\n' \
        "$(cat "$work/$s.cc")" >"$work/cc.lua"
      args=(-s "$work/cc.lua" "$url/oauth2/token");;
    refresh_es256|refresh_rs256)
      local alg=ES256; [ "$op" = refresh_rs256 ] && alg=RS256
      args=(-s bench/oidc/refresh.lua "$url/oauth2/token" -- "$work/$s.tokens-$alg" 2 "$(cat "$work/$s.rp-$alg")" "$work/$s.tokens-$alg.next");;
    jwks) args=("$url/oauth2/jwks");;
    *) echo "compare: unknown operation $op" >&2; exit 2;;
  esac
  local wb wa lb
  settle
  lb="$(stat -c %s "$work/$s.log")"
  snap "$s" >"$work/before"
  times >"$work/times"; wb="$(children_ms)"
  wrk -t2 -c"$conns" -d"${secs}s" --latency "${args[@]}" >"$work/wrk.out" 2>&1 || true
  times >"$work/times"; wa="$(children_ms)"
  snap "$s" >"$work/after"
  case "$op" in refresh_*)
    # The pool goes on from the tokens the responses returned.
    if [ -s "$work/$s.tokens-$alg.next" ]; then mv "$work/$s.tokens-$alg.next" "$work/$s.tokens-$alg"; fi;;
  esac
  local n rps p50 p99 non2xx hp99
  # The server's own p99 (bench/oidc/handler-latency.sh): the handler's
  # time, without the waits for a core of wrk's threads.
  hp99="$(bench/oidc/handler-latency.sh "$work/$s.log" "$lb" | cut -d' ' -f3)"
  n="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk.out")"
  rps="$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$work/wrk.out")"
  p50="$(sed -n 's/^ *50% *\([0-9.]*[a-z]*\).*/\1/p' "$work/wrk.out" | ms)"
  p99="$(sed -n 's/^ *99% *\([0-9.]*[a-z]*\).*/\1/p' "$work/wrk.out" | ms)"
  non2xx="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$work/wrk.out")"
  if [ -z "$n" ] || [ "${n:-0}" = 0 ]; then cat "$work/wrk.out" >&2; echo "compare: $s $op: no requests" >&2; exit 1; fi
  # A process in both snapshots counts its difference, one that appeared
  # in between all its ticks (one that ended in between is missed).
  awk -v op="$op" -v s="$s" -v n="$n" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v hz="$(getconf CLK_TCK)" \
    -v w="$((wa - wb))" -v la="$(cut -d' ' -f1 /proc/loadavg)" -v bad="${non2xx:-0}" -v hp99="$hp99" '
    FNR == NR { b[$1 " " $2] = $3; next }
    { d[$1] += $3 - (($1 " " $2) in b ? b[$1 " " $2] : 0) }
    END {
      printf "%-18s %-3s %9.0f %7.2f %7.2f %7.3f %7.3f %7.3f %7.3f %7.3f %5.2f %6s %7s\n", op, s, rps, p50, p99,
        d["server"]*1000/hz/n, d["postgres"]*1000/hz/n, d["redis"]*1000/hz/n, w/n, d["machine"]*1000/hz/n, la, bad, hp99
    }' "$work/before" "$work/after" | tee -a "$work/results"
  if [ "${non2xx:-0}" != 0 ]; then
    echo "compare: $s $op had $non2xx failed responses (server log: last lines below)" >&2
    tail -5 "$work/$s.log" >&2
  fi
}

echo "# $(date -u +%FT%TZ) $(nproc) cores; old = $old_desc ($old_sha), new = $new_desc; $rounds rounds of: $OPS; wrk -t2 -c$conns -d${secs}s; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# operation          side    req/s  p50_ms  p99_ms  ms CPU per request: server  postgres  redis  wrk  machine   load non2xx handler_p99_ms"
# Which side goes first alternates from round to round for each operation
# and from operation to operation within a round (the run after a heavy
# one can inherit its background work: WAL writing, autovacuum).
for r in $(seq 1 "$rounds"); do
  k=0
  for op in $OPS; do
    k=$((k + 1))
    if [ $(((r + k) % 2)) -eq 0 ]; then run_op old "$op"; run_op new "$op"; else run_op new "$op"; run_op old "$op"; fi
  done
done

summary() {
  awk -v ops="$OPS" -v od="$old_desc" -v nd="$new_desc" '
    function med(v, n,   i, j, t, w) {
      for (i = 0; i < n; i++) w[i] = v[i]
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (w[j] < w[i]) { t = w[i]; w[i] = w[j]; w[j] = t }
      return (n % 2) ? w[int(n / 2)] : (w[n / 2 - 1] + w[n / 2]) / 2
    }
    { k = $1 SUBSEP $2; x = cnt[k]++
      rps[k, x] = $3; p50[k, x] = $4; p99[k, x] = $5; srv[k, x] = $6; pg[k, x] = $7; rd[k, x] = $8; mach[k, x] = $10; ld[k, x] = $11; hp[k, x] = $13 }
    END {
      n = split(ops, o, " ")
      printf "\n# medians per side, and new/old per pair (req/s ratio > 1 and CPU ratio < 1 are better)\n"
      for (i = 1; i <= n; i++) {
        op = o[i]
        for (si = 0; si < 2; si++) {
          s = si ? "new" : "old"; k = op SUBSEP s; m = cnt[k]
          for (j = 0; j < m; j++) { va[j] = rps[k, j]; vb[j] = p50[k, j]; vc[j] = p99[k, j]; vd[j] = srv[k, j]; ve[j] = pg[k, j]; vf[j] = rd[k, j]; vg[j] = mach[k, j]; vh[j] = ld[k, j]; vi[j] = hp[k, j] }
          printf "%-18s %s %-14s %2d runs: %8.0f req/s, p50 %6.2f ms, p99 %6.2f ms (handler %.2f), CPU ms/req: server %.3f, postgres %.3f, redis %.3f, machine %.3f; load %.2f\n",
            op, s, "(" (si ? nd : od) ")", m, med(va, m), med(vb, m), med(vc, m), med(vi, m), med(vd, m), med(ve, m), med(vf, m), med(vg, m), med(vh, m)
        }
        ko = op SUBSEP "old"; kn = op SUBSEP "new"; m = cnt[ko] < cnt[kn] ? cnt[ko] : cnt[kn]
        line = ""; linec = ""
        for (j = 0; j < m; j++) {
          rr[j] = rps[kn, j] / rps[ko, j]; line = line sprintf(" %.3f", rr[j])
          cr[j] = (srv[ko, j] > 0) ? srv[kn, j] / srv[ko, j] : 0; linec = linec sprintf(" %.3f", cr[j])
        }
        printf "%-18s new/old req/s per pair:%s (median %.3f); server CPU per request:%s (median %.3f)\n", op, line, med(rr, m), linec, med(cr, m)
      }
    }' "$work/results"
}
summary

# --- optional phases ------------------------------------------------------------
case " $EXTRA " in *" face "*)
  echo
  echo "# face: go run ./bench/face -n ${FACE_N:-60} -workers 1, alternating (load $(cut -d' ' -f1-3 /proc/loadavg))"
  for r in $(seq 1 "$rounds"); do
    for s in $([ $((r % 2)) -eq 1 ] && echo "old new" || echo "new old"); do
      dir="$root"; [ "$s" = old ] && dir="$oldtree"
      echo "## $s ($([ "$s" = old ] && echo "$old_desc" || echo "$new_desc")), round $r, load $(cut -d' ' -f1 /proc/loadavg)"
      # bench/face prints JSON: one line of its verify figures.
      out="$(cd "$dir" && go run ./bench/face -n "${FACE_N:-60}" -workers 1 2>&1 || true)"
      line="$(echo "$out" | grep -E '"(workers|cpu_p50_ms|p50_ms|p99_ms|mean_ms|verifications_per_s)"' | tr -d ' \n')"
      if [ -n "$line" ]; then echo "$line"; else echo "$out" | tail -8; fi
    done
  done;;
esac
case " $EXTRA " in *" liveness "*)
  echo
  echo "# liveness decision latency: eval-liveness -parts latency, alternating (load $(cut -d' ' -f1-3 /proc/loadavg))"
  live_bin() { # SIDE: a binary of that side that has eval-liveness
    local b
    for b in "$work/$1/trustid" "$work/$1/trustid-lab"; do
      local help=""; [ -x "$b" ] && help="$("$b" eval-liveness -h 2>&1 || true)"
      [[ "$help" == *-parts* ]] && { echo "$b"; return; }
    done
    if [ "$1" = old ]; then
      (cd "$oldtree" && go build -o "$work/old/trustid-lab" ./cmd/trustid-lab) >&2 && echo "$work/old/trustid-lab"
    fi
  }
  lo="$(live_bin old)"; ln_="$(live_bin new)"
  for r in $(seq 1 "$rounds"); do
    for s in $([ $((r % 2)) -eq 1 ] && echo "old new" || echo "new old"); do
      b="$lo"; [ "$s" = new ] && b="$ln_"
      echo "## $s ($([ "$s" = old ] && echo "$old_desc" || echo "$new_desc")), round $r, load $(cut -d' ' -f1 /proc/loadavg)"
      # The report is JSON: its "latency" object on one line.
      out="$("$b" eval-liveness -parts latency 2>&1 || true)"
      line="$(echo "$out" | awk '/"latency": *\{/ { on = 1; d = 0 }
        on { print; d += gsub(/\{/, "{"); d -= gsub(/\}/, "}"); if (d <= 0) exit }' | tr -d '\n' \
        | sed 's/  */ /g; s/, *"last_result_checks".*/ }/')"
      if [ -n "$line" ]; then echo "$line"; else echo "$out" | tail -12; fi
    done
  done;;
esac
