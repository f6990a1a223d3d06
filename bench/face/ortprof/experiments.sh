#!/usr/bin/env bash
# The two ways to less CPU per network run that #21 names besides the
# layout, measured on this machine: batching (the liveness key frames
# through each network at once) and int8 (QLinearConv kernels). For each
# of the face engine's and the face mesh's networks, as the service hands
# them to ONNX Runtime (trustid-lab onnx-nchwc), ortprof's CPU ms per run
# at batch 1, 2 and 4, then per image; and the network with PRelu as Relu in
# float and in int8 QDQ form (variants.py; speed only). LIBS: ONNX Runtime
# libraries to compare (default the pinned 1.17.1); e.g. the one in npm
# onnxruntime-node@1.31.1 (bin/napi-v6/linux/x64/libonnxruntime.so.1).
# Usage: bench/face/ortprof/experiments.sh [runs]   (quiet machine)
# Needs `. deploy/env.sh`, cc, Go and Debian's python3-onnx.
set -euo pipefail
cd "$(dirname "$0")/../../.."
runs="${1:-200}"
libs="${LIBS:-$TRUSTID_MODELS/libonnxruntime.so}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/ortprof" bench/face/ortprof/ortprof.c -ldl -I"$(go env GOMODCACHE)/github.com/yalue/onnxruntime_go@v1.9.0"
go build -o "$tmp/lab" ./cmd/trustid-lab
py=/usr/bin/python3
cpu() { "$tmp/ortprof" "$1" "$2" "$runs" 2>/dev/null | sed -n 's/.*cpu p50 \([0-9.]*\) ms.*/\1/p'; }
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1 /proc/loadavg), commit $(git rev-parse --short HEAD); CPU ms per run (p50 of $runs)"
for m in fr_detect fr_feature fr_liveness face_mesh; do
  "$tmp/lab" onnx-nchwc -in "$TRUSTID_MODELS/$m.onnx" -out "$tmp/$m.onnx"
  for b in 2 4; do "$py" bench/face/ortprof/variants.py batch "$b" "$tmp/$m.onnx" "$tmp/$m-b$b.onnx"; done
  "$py" bench/face/ortprof/variants.py relu "$TRUSTID_MODELS/$m.onnx" "$tmp/$m-relu.onnx"
  "$py" bench/face/ortprof/variants.py int8 "$TRUSTID_MODELS/$m.onnx" "$tmp/$m-int8.onnx"
done
for lib in $libs; do
  echo "## $lib"
  echo "# network batch1 batch2 batch4 (per image: b2/2 b4/4) | relu-float int8-qdq"
  for m in fr_detect fr_feature fr_liveness face_mesh; do
    b1="$(cpu "$lib" "$tmp/$m.onnx")" b2="$(cpu "$lib" "$tmp/$m-b2.onnx")" b4="$(cpu "$lib" "$tmp/$m-b4.onnx")"
    rf="$(cpu "$lib" "$tmp/$m-relu.onnx")" q="$(cpu "$lib" "$tmp/$m-int8.onnx" || true)"
    awk -v m="$m" -v b1="$b1" -v b2="$b2" -v b4="$b4" -v rf="$rf" -v q="${q:-fails}" \
      'BEGIN { printf "%-12s %6.2f %6.2f %6.2f (%.2f %.2f) | %6.2f %s\n", m, b1, b2, b4, b2 / 2, b4 / 4, rf, q }'
  done
done
