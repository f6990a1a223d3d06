package face

import (
	"context"
	"runtime"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// probe640 is a 640x480 JPEG made at test time from a NUAA live capture.
func probe640(b *testing.B) []byte {
	m := decodeT(b, testdata(b, nuaaImage))
	defer m.Close()
	if m.Cols() != 640 || m.Rows() != 480 {
		b.Fatalf("want a 640x480 source, got %dx%d", m.Cols(), m.Rows())
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 90})
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...)
}

// cpuLoop runs f b.N times on one locked OS thread and reports its CPU
// time per operation ("cpu-ms/op"): the one-core latency, unaffected by
// other processes sharing the machine (OpenCV runs one thread per worker).
func cpuLoop(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	c := threadCPU()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(threadCPU()-c)/float64(time.Millisecond)/float64(n), "cpu-ms/op")
}

// stageWorker takes one worker out of the shared engine of a runtime for
// stage timings.
func stageWorker(b *testing.B, rt Runtime) (*worker, gocv.Mat, Detection, [5]Point) {
	e := runtimeEngine(b, rt)
	w, err := e.acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.release(w) })
	img, err := decode(probe640(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { img.Close() })
	d, err := w.detect(img)
	if err != nil || len(d) == 0 {
		b.Fatalf("no face in the benchmark image (%v)", err)
	}
	lm, err := w.landmarks(img, d[0].Box)
	if err != nil {
		b.Fatal(err)
	}
	return w, img, d[0], FivePoints(&lm)
}

// must fails the benchmark on a stage's error.
func must[T any](b *testing.B) func(T, error) {
	return func(_ T, err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// Per-stage latency on one worker, 640x480 input, for each runtime of the
// networks (decode, align and quality are OpenCV's either way).
func BenchmarkStage(b *testing.B) {
	b.Run("decode", func(b *testing.B) {
		data := probe640(b)
		cpuLoop(b, func() {
			if _, _, err := Check(data, Limits{}); err != nil {
				b.Fatal(err)
			}
			m, err := decode(data)
			if err != nil {
				b.Fatal(err)
			}
			m.Close()
		})
	})
	for _, rt := range []Runtime{RuntimeONNX, RuntimeOpenCV} {
		b.Run(string(rt), func(b *testing.B) {
			b.Run("detect", func(b *testing.B) {
				w, img, _, _ := stageWorker(b, rt)
				cpuLoop(b, func() { must[[]Detection](b)(w.detect(img)) })
			})
			b.Run("landmarks", func(b *testing.B) {
				w, img, d, _ := stageWorker(b, rt)
				cpuLoop(b, func() { must[[68]Point](b)(w.landmarks(img, d.Box)) })
			})
			b.Run("embed", func(b *testing.B) {
				w, img, _, five := stageWorker(b, rt)
				w.align(img, five)
				cpuLoop(b, func() { must[[]float32](b)(w.embed()) })
			})
			b.Run("antispoof", func(b *testing.B) {
				w, img, d, _ := stageWorker(b, rt)
				cpuLoop(b, func() { must[float32](b)(w.antiSpoof(img, d.Box)) })
			})
		})
	}
	b.Run("align", func(b *testing.B) {
		w, img, _, five := stageWorker(b, RuntimeONNX)
		cpuLoop(b, func() { w.align(img, five) })
	})
	b.Run("quality", func(b *testing.B) {
		w, img, _, five := stageWorker(b, RuntimeONNX)
		w.align(img, five)
		cpuLoop(b, func() { w.measure() })
	})
}

// BenchmarkVerify is a full 1:1 verification of a 640x480 JPEG: header
// check, decode, detect, landmarks, gates, align, embed, cosine against a
// stored template. One request at a time (one worker busy), on each
// runtime of the networks.
func BenchmarkVerify(b *testing.B) {
	for _, rt := range []Runtime{RuntimeONNX, RuntimeOpenCV} {
		b.Run(string(rt), func(b *testing.B) {
			e := runtimeEngine(b, rt)
			data := probe640(b)
			ctx := context.Background()
			ref, err := e.Process(ctx, data, Options{Embedding: true})
			if err != nil {
				b.Fatal(err)
			}
			cpuLoop(b, func() {
				res, err := e.Process(ctx, data, Options{Embedding: true})
				if err != nil {
					b.Fatal(err)
				}
				if Cosine(res.Embedding, ref.Embedding) < 0.99 {
					b.Fatal("unstable embedding")
				}
			})
		})
	}
}
