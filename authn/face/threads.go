package face

// #cgo CXXFLAGS: -std=c++11
// #include "threads.h"
import "C"

// SetOpenCVThreads sets OpenCV's process-wide worker thread count. One
// thread per pooled worker (the default the engine applies) gives the best
// throughput when requests run in parallel; more helps a single request's
// latency only when the machine is otherwise idle.
func SetOpenCVThreads(n int) { C.trustid_cv_set_num_threads(C.int(n)) }

// OpenCVThreads reports OpenCV's current thread count.
func OpenCVThreads() int { return int(C.trustid_cv_get_num_threads()) }
