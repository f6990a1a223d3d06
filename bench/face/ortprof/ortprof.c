// ortprof times one ONNX model on ONNX Runtime's C API with the session
// options the Go binding (onnxruntime_go v1.9.0) cannot set, to choose
// them for internal/onnx: graph optimisation level, intra-op threads,
// spinning, memory pattern and arena. Random input, fixed shapes (a
// dynamic dimension is taken as 1); wall and process CPU ms per run.
//
//	cc -O2 -o /tmp/ortprof bench/face/ortprof/ortprof.c -ldl -I"$(go env GOMODCACHE)/github.com/yalue/onnxruntime_go@v1.9.0"
//	/tmp/ortprof $TRUSTID_MODELS/libonnxruntime.so $TRUSTID_MODELS/fr_feature.onnx 200
//	/tmp/ortprof LIB MODEL N [opt: -1 default, 0 off, 1 basic, 2 extended, 99 all]
//	             [intra threads] [mem pattern 0/1] [arena 0/1] [spinning 0/1]
//	PROF=/tmp/feat /tmp/ortprof LIB MODEL 100   # also writes ORT's per-node profile
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnxruntime_c_api.h"

static const OrtApi *g;
#define CK(x)                                                             \
  do {                                                                    \
    OrtStatus *s_ = (x);                                                  \
    if (s_) {                                                             \
      fprintf(stderr, "%s: %s\n", #x, g->GetErrorMessage(s_));            \
      exit(1);                                                            \
    }                                                                     \
  } while (0)

static double now(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: ortprof LIB MODEL N [opt] [intra] [mempattern] [arena] [spin]\n");
    return 2;
  }
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  const OrtApiBase *(*base)(void) = (const OrtApiBase *(*)(void))dlsym(h, "OrtGetApiBase");
  if (!base || !(g = base()->GetApi(17))) {
    fprintf(stderr, "%s: no ORT API version 17\n", argv[1]);
    return 1;
  }
  int n = atoi(argv[3]);
  int opt = argc > 4 ? atoi(argv[4]) : -1, intra = argc > 5 ? atoi(argv[5]) : 1;
  int mempat = argc > 6 ? atoi(argv[6]) : 1, arena = argc > 7 ? atoi(argv[7]) : 1;
  int spin = argc > 8 ? atoi(argv[8]) : 1;
  if (n < 1) n = 1;
  OrtEnv *env;
  CK(g->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "ortprof", &env));
  OrtSessionOptions *so;
  CK(g->CreateSessionOptions(&so));
  if (opt >= 0) CK(g->SetSessionGraphOptimizationLevel(so, (GraphOptimizationLevel)opt));
  CK(g->SetIntraOpNumThreads(so, intra));
  CK(g->SetInterOpNumThreads(so, 1));
  if (!mempat) CK(g->DisableMemPattern(so));
  if (!arena) CK(g->DisableCpuMemArena(so));
  CK(g->AddSessionConfigEntry(so, "session.intra_op.allow_spinning", spin ? "1" : "0"));
  if (getenv("PROF")) CK(g->EnableProfiling(so, getenv("PROF")));
  OrtSession *s;
  CK(g->CreateSession(env, argv[2], so, &s));
  OrtAllocator *al;
  CK(g->GetAllocatorWithDefaultOptions(&al));
  size_t nin, nout;
  CK(g->SessionGetInputCount(s, &nin));
  CK(g->SessionGetOutputCount(s, &nout));
  if (nin > 8 || nout > 8) return 1;
  char *inn[8], *outn[8];
  OrtValue *inv[8] = {0}, *outv[8] = {0};
  OrtMemoryInfo *mi;
  CK(g->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mi));
  srand(1);
  for (size_t i = 0; i < nin; i++) {
    CK(g->SessionGetInputName(s, i, al, &inn[i]));
    OrtTypeInfo *ti;
    CK(g->SessionGetInputTypeInfo(s, i, &ti));
    const OrtTensorTypeAndShapeInfo *tsi;
    CK(g->CastTypeInfoToTensorInfo(ti, &tsi));
    size_t nd;
    CK(g->GetDimensionsCount(tsi, &nd));
    int64_t d[8];
    if (nd > 8) return 1;
    CK(g->GetDimensions(tsi, d, nd));
    size_t tot = 1;
    for (size_t k = 0; k < nd; k++) {
      if (d[k] <= 0) d[k] = 1;
      tot *= d[k];
    }
    float *buf = malloc(tot * sizeof(float));
    for (size_t k = 0; k < tot; k++) buf[k] = (rand() % 256 - 127) / 128.0f;
    CK(g->CreateTensorWithDataAsOrtValue(mi, buf, tot * sizeof(float), d, nd,
                                         ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &inv[i]));
  }
  for (size_t i = 0; i < nout; i++) CK(g->SessionGetOutputName(s, i, al, &outn[i]));
  double *w = malloc(n * sizeof(double)), *c = malloc(n * sizeof(double));
  for (int it = -5; it < n; it++) {  // 5 warm-up runs
    for (size_t i = 0; i < nout; i++)
      if (outv[i]) {
        g->ReleaseValue(outv[i]);
        outv[i] = NULL;
      }
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    CK(g->Run(s, NULL, (const char *const *)inn, (const OrtValue *const *)inv, nin,
              (const char *const *)outn, nout, outv));
    if (it >= 0) {
      w[it] = now(CLOCK_MONOTONIC) - t0;
      c[it] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
  }
  if (getenv("PROF")) {
    char *pf;
    CK(g->SessionEndProfiling(s, al, &pf));
    fprintf(stderr, "profile: %s\n", pf);
  }
  qsort(w, n, sizeof(double), cmpd);
  qsort(c, n, sizeof(double), cmpd);
  const char *m = strrchr(argv[2], '/');
  printf("%s opt=%d intra=%d mempattern=%d arena=%d spin=%d: wall p50 %.2f p90 %.2f ms, cpu p50 %.2f ms\n",
         m ? m + 1 : argv[2], opt, intra, mempat, arena, spin, w[n / 2], w[n * 9 / 10], c[n / 2]);
  return 0;
}
