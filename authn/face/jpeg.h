#ifndef TRUSTID_FACE_JPEG_H
#define TRUSTID_FACE_JPEG_H
// trustid_jpeg_bgr decodes a baseline or progressive YCbCr JPEG straight
// to 8-bit BGR with libjpeg(-turbo) (see jpeg.go). With dst NULL it only
// reads the header and sets *w and *h. It returns TRUSTID_JPEG_OK, or
// TRUSTID_JPEG_OTHER for anything it leaves to OpenCV's decoder: another
// colour space or component count, an EXIF orientation other than 1 (or
// EXIF it cannot read), a size other than w x h, any libjpeg warning or
// error (corrupt or truncated data).
#define TRUSTID_JPEG_OK 0
#define TRUSTID_JPEG_OTHER 1
int trustid_jpeg_bgr(const unsigned char *data, unsigned long n, unsigned char *dst, int *w, int *h);
#endif
