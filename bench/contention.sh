#!/usr/bin/env bash
# How much a busy second CPU slows this one: the thread CPU time of the
# face networks (ONNX Runtime, one thread, pinned to CPU 0) alone, and with
# a plain shell loop spinning on CPU 1 (no memory traffic, nothing shared
# with the benchmark), alternating, several rounds. On a VM whose two vCPUs
# are SMT siblings of one core (or share a power budget) the networks take
# markedly more CPU time per run while the other vCPU is busy, which is
# what a liveness decision's parallel stages do to each other: its CPU
# figure is then that much above the sum of its stages measured alone.
# Usage: bench/contention.sh [rounds] [benchtime]   (defaults 3, 200x)
# Needs TRUSTID_MODELS and TRUSTID_TESTDATA (. deploy/env.sh) and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/env.sh
rounds="${1:-3}" n="${2:-200x}"
work="$(mktemp -d)"
spin=""
trap '[ -n "$spin" ] && kill "$spin" 2>/dev/null; rm -rf "$work"' EXIT
go test -c -o "$work/face.test" ./authn/face
run() { # run LABEL: one line per stage, thread CPU ms per run
  (cd authn/face && taskset -c 0 "$work/face.test" -test.run '^$' \
    -test.bench 'Stage/onnxruntime/(detect|embed|antispoof)$' -test.benchtime "$n") |
    awk -v l="$1" '/^Benchmark/ { for (i = 2; i <= NF; i++) if ($i == "cpu-ms/op") print l, $1, $(i - 1) }' | tee -a "$work/out"
}
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD)"
echo "# label stage cpu_ms_per_run"
for _ in $(seq 1 "$rounds"); do
  run alone
  taskset -c 1 sh -c 'while :; do :; done' &
  spin=$!
  run busy
  kill "$spin"
  wait "$spin" 2>/dev/null || true
  spin=""
done
awk '{ k = $2; if ($1 == "alone") { a[k] += $3; na[k]++ } else { b[k] += $3; nb[k]++ } }
  END { for (k in a) if (nb[k]) printf "%s: alone %.2f ms, other CPU busy %.2f ms per run (x%.2f)\n", k, a[k] / na[k], b[k] / nb[k], (b[k] / nb[k]) / (a[k] / na[k]) }' "$work/out"
