# Build and test environment for TrustID; sourced by the Makefile's recipes
# and usable by hand: `. deploy/env.sh`.
# gocv v0.31 is built against Debian's OpenCV 4.6 module packages (which ship
# no opencv4.pc), hence the customenv tag and explicit flags.
export CGO_CPPFLAGS="-I/usr/include/opencv4"
export CGO_LDFLAGS="-lopencv_core -lopencv_imgproc -lopencv_imgcodecs -lopencv_dnn -lopencv_objdetect -lopencv_videoio -lopencv_highgui -lopencv_features2d -lopencv_calib3d -lopencv_photo -lopencv_video -lopencv_flann -lopencv_ml -lopencv_stitching"
export GOFLAGS="-tags=customenv -buildvcs=false"
_trustid_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
export TRUSTID_MODELS="${TRUSTID_MODELS:-$_trustid_root/models}"
if [ -z "${TRUSTID_TESTDATA:-}" ] && [ -d "$_trustid_root/../shared/testdata" ]; then
  export TRUSTID_TESTDATA="$(cd "$_trustid_root/../shared/testdata" && pwd)"
fi
unset _trustid_root
