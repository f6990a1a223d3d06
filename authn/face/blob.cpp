// The input tensor of an ONNX Runtime network, written straight into the
// binding's memory: what cv::dnn::blobFromImage computes for an image
// already at the network's size (it subtracts the mean, then scales, in
// float), without its intermediate float image.
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
    for (int y = 0; y < rows; y++) {
      const uchar *p = src.ptr<uchar>(y);
      float *o = dst + (long)y * cols;
      for (int x = 0; x < cols; x++) o[x] = ((float)p[x] - mean) * scale;
    }
    return 0;
  }
  float *o0 = dst, *o1 = dst + hw, *o2 = dst + 2 * hw;
  if (swap_rb) std::swap(o0, o2);
  for (int y = 0; y < rows; y++) {
    const uchar *p = src.ptr<uchar>(y);
    const long r = (long)y * cols;
    for (int x = 0; x < cols; x++) {
      o0[r + x] = ((float)p[3 * x] - mean) * scale;
      o1[r + x] = ((float)p[3 * x + 1] - mean) * scale;
      o2[r + x] = ((float)p[3 * x + 2] - mean) * scale;
    }
  }
  return 0;
}
