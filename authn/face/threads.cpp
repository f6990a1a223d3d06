// cv::setNumThreads is missing from gocv v0.31; this is the whole helper.
#include <opencv2/core/utility.hpp>
#include "threads.h"

extern "C" void trustid_cv_set_num_threads(int n) { cv::setNumThreads(n); }
extern "C" int trustid_cv_get_num_threads(void) { return cv::getNumThreads(); }
