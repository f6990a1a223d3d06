// The input tensor of an ONNX Runtime network, written straight into the
// binding's memory: what cv::dnn::blobFromImage computes for an image
// already at the network's size, without its intermediate float image.
// blobFromImage subtracts the mean, then scales; this converts with
// x * scale - mean * scale in one vectorised pass, which gives the same
// floats to the bit for 8-bit x and the scales used (powers of two, so
// every term is exact).
#include <opencv2/core.hpp>
#include "blob.h"

extern "C" int trustid_blob(void *mat, float *dst, long n, float scale, float mean, int swap_rb) {
  const cv::Mat &src = *static_cast<const cv::Mat *>(mat);
  const int ch = src.channels(), rows = src.rows, cols = src.cols;
  if (src.dims != 2 || src.depth() != CV_8U || (ch != 1 && ch != 3) || n != (long)rows * cols * ch) {
    return -1;
  }
  const long hw = (long)rows * cols;
  if (ch == 1) {
    cv::Mat out(rows, cols, CV_32F, dst);
    src.convertTo(out, CV_32F, scale, -mean * scale);
    return 0;
  }
  cv::Mat planes[3];
  cv::split(src, planes);
  for (int c = 0; c < 3; c++) {
    cv::Mat out(rows, cols, CV_32F, dst + c * hw);
    planes[swap_rb ? 2 - c : c].convertTo(out, CV_32F, scale, -mean * scale);
  }
  return 0;
}
