#ifndef TRUSTID_FACE_BLOB_H
#define TRUSTID_FACE_BLOB_H
#ifdef __cplusplus
extern "C" {
#endif
// trustid_blob writes an 8-bit 1- or 3-channel cv::Mat as a planar float
// tensor (CHW), (x - mean) * scale, channels reversed when swap_rb; it
// returns -1 (writing nothing) unless n is rows * cols * channels.
int trustid_blob(void *mat, float *dst, long n, float scale, float mean, int swap_rb);
#ifdef __cplusplus
}
#endif
#endif
