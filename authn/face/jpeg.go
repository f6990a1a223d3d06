package face

// #cgo LDFLAGS: -ljpeg
// #include "jpeg.h"
import "C"

import (
	"unsafe"

	"gocv.io/x/gocv"
)

// decodeJPEG decodes a JPEG to a BGR Mat with libjpeg(-turbo) itself,
// asking it for BGR output (jpeg.c), when that gives what OpenCV's
// imdecode gives: a YCbCr JPEG without an EXIF rotation, decoded without
// a warning. ok is false for anything else, left to OpenCV.
//
// Why: OpenCV 4.6 has libjpeg decode to RGB and then swaps each pixel's
// bytes in a scalar loop, which took 11 % of a 1:1 verification's CPU
// (about 1.3 of 11.5 ms on a 640x480 photo, perf on bench/face): the
// decode stage took 2.8 ms where libjpeg alone takes 0.6. The pixels are
// the same to the bit (TestDecodeJPEGMatchesOpenCV): the same library, the
// same inverse DCT and upsampling, the same colour conversion written in
// the other byte order.
func decodeJPEG(data []byte) (m gocv.Mat, ok bool) {
	if len(data) == 0 {
		return gocv.Mat{}, false
	}
	src, n := (*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data))
	var w, h C.int
	if C.trustid_jpeg_bgr(src, n, nil, &w, &h) != C.TRUSTID_JPEG_OK || w <= 0 || h <= 0 ||
		int64(w)*int64(h) > int64(Limits{}.withDefaults().MaxPixels) {
		return gocv.Mat{}, false
	}
	m = gocv.NewMatWithSize(int(h), int(w), gocv.MatTypeCV8UC3)
	buf, err := m.DataPtrUint8()
	if err != nil || len(buf) != int(w)*int(h)*3 ||
		C.trustid_jpeg_bgr(src, n, (*C.uchar)(unsafe.Pointer(&buf[0])), &w, &h) != C.TRUSTID_JPEG_OK {
		m.Close()
		return gocv.Mat{}, false
	}
	return m, true
}
