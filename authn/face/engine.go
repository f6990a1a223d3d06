// Package face is TrustID's face engine: it decodes untrusted JPEG/PNG
// photos (or takes raw BGR video frames), detects faces (RFB-320), finds 68
// landmarks, aligns the face to the ArcFace template with a five-point
// similarity transform, computes a 512-d L2-normalised embedding and a
// passive anti-spoof score, and applies quality gates with specific errors.
//
// It is the only package that imports gocv (OpenCV). The four networks run
// on ONNX Runtime through internal/onnx (Config.Runtime; OpenCV DNN is the
// reference it is checked against), image work (decoding, resizing,
// warping) on OpenCV. Callers see plain Go types only. An Engine keeps a
// pool of workers sized to the cores, each owning its image buffers and
// its input and output tensors on the engine's shared ONNX Runtime
// sessions (or, on OpenCV, its own networks: those are not thread-safe).
package face

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"gocv.io/x/gocv"

	"github.com/trustid/trustid/internal/onnx"
)

// Model files and their pinned SHA-256 sums (DESIGN.md "Face models").
// Anything else is refused.
var pinned = map[string]string{
	"fr_detect.onnx":   "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854",
	"fr_landmark.onnx": "f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258",
	"fr_feature.onnx":  "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
	"fr_liveness.onnx": "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d",
}

// ModelVersion names the embedding model; stored templates carry it so a
// model change can be detected.
const ModelVersion = "fr_feature.onnx/sha256:87aacdfe57510db2"

// EmbeddingSize is the length of an embedding.
const EmbeddingSize = 512

// The misalignment gate's defaults (Config.MaxAlignResidual,
// Config.MinEyeBoxRatio), chosen with `trustid-lab face-quality -rows` on
// faces cut by the frame (seed 1 samples of LFW, FairFace and NUAA) and
// checked on other samples: README, "Capture robustness".
const (
	DefaultMaxAlignResidual = 7
	DefaultMinEyeBoxRatio   = 0.33
)

// ErrModel reports a missing or unpinned model file.
var ErrModel = errors.New("face: model")

// Config configures an Engine. Zero values take the defaults noted.
type Config struct {
	// ModelDir is the directory holding the pinned .onnx files and
	// libonnxruntime.so (required).
	ModelDir string
	Workers  int // pooled workers (concurrent calls); default runtime.NumCPU()
	// Runtime runs the networks: RuntimeONNX (default) or RuntimeOpenCV.
	Runtime Runtime
	// IntraOpThreads is ONNX Runtime's thread count for one network run;
	// default 1 (one thread per pooled worker, best throughput; with 1 a
	// run stays on the caller's thread).
	IntraOpThreads int
	// OpenCVThreads sets OpenCV's process-wide thread count; default 1 (one
	// thread per pooled worker, best throughput). Negative leaves OpenCV's
	// own default.
	OpenCVThreads int
	Limits        Limits

	ScoreThreshold float32 // detector score, default 0.65
	NMSThreshold   float32 // IoU, default 0.4

	MinFaceSize   float64 // box height in pixels, default 64
	MinSharpness  float64 // Laplacian variance of the aligned face, default 20
	MinBrightness float64 // mean grey of the aligned face, default 40
	MaxYaw        float64 // degrees, default 40
	MaxPitch      float64 // degrees, default 35
	MaxRoll       float64 // degrees, default 35
	// MaxAlignResidual bounds Quality.AlignResidual (pixels of the 112x112
	// aligned face); default DefaultMaxAlignResidual.
	MaxAlignResidual float64
	// MinEyeBoxRatio bounds Quality.EyeBoxRatio from below; default
	// DefaultMinEyeBoxRatio.
	MinEyeBoxRatio float64
	// ReferenceEdgeCrop cuts the landmark crop of a face at the frame's
	// edge as the reference pipeline does (clamped, squeezed) instead of
	// padded: only for evaluations that compare the two
	// (trustid-lab face-quality -reference-crop).
	ReferenceEdgeCrop bool

	Logger *slog.Logger // default: discard
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Runtime == "" {
		c.Runtime = RuntimeONNX
	}
	if c.IntraOpThreads <= 0 {
		c.IntraOpThreads = 1
	}
	if c.OpenCVThreads == 0 {
		c.OpenCVThreads = 1
	}
	c.Limits = c.Limits.withDefaults()
	if c.ScoreThreshold == 0 {
		c.ScoreThreshold = 0.65
	}
	if c.NMSThreshold == 0 {
		c.NMSThreshold = 0.4
	}
	if c.MinFaceSize == 0 {
		c.MinFaceSize = 64
	}
	if c.MinSharpness == 0 {
		c.MinSharpness = 20
	}
	if c.MinBrightness == 0 {
		c.MinBrightness = 40
	}
	if c.MaxYaw == 0 {
		c.MaxYaw = 40
	}
	if c.MaxPitch == 0 {
		c.MaxPitch = 35
	}
	if c.MaxRoll == 0 {
		c.MaxRoll = 35
	}
	if c.MaxAlignResidual == 0 {
		c.MaxAlignResidual = DefaultMaxAlignResidual
	}
	if c.MinEyeBoxRatio == 0 {
		c.MinEyeBoxRatio = DefaultMinEyeBoxRatio
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

func (c *Config) onnxLibrary() string { return filepath.Join(c.ModelDir, onnx.LibraryName) }

// Engine runs the face pipeline on a pool of workers. It is safe for
// concurrent use.
type Engine struct {
	cfg     Config
	pool    chan *worker
	done    chan struct{} // closed by Close: waiting callers give up
	once    sync.Once
	workers []*worker
	sess    *sessions // ONNX Runtime sessions (nil on OpenCV)
}

// New loads and checks the models and builds cfg.Workers network sets.
func New(cfg Config) (*Engine, error) {
	cfg.defaults()
	if cfg.ModelDir == "" {
		return nil, fmt.Errorf("%w: no model directory", ErrModel)
	}
	if cfg.Runtime != RuntimeONNX && cfg.Runtime != RuntimeOpenCV {
		return nil, fmt.Errorf("face: runtime %q: want %q or %q", cfg.Runtime, RuntimeONNX, RuntimeOpenCV)
	}
	models := map[string][]byte{}
	for name, sum := range pinned {
		b, err := os.ReadFile(filepath.Join(cfg.ModelDir, name))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrModel, err)
		}
		h := sha256.Sum256(b)
		if got := hex.EncodeToString(h[:]); got != sum {
			return nil, fmt.Errorf("%w: %s has sha256 %s, want %s", ErrModel, name, got, sum)
		}
		models[name] = b
	}
	if cfg.OpenCVThreads > 0 {
		SetOpenCVThreads(cfg.OpenCVThreads)
	}
	e := &Engine{cfg: cfg, pool: make(chan *worker, cfg.Workers), done: make(chan struct{})}
	if cfg.Runtime == RuntimeONNX {
		s, err := openSessions(&e.cfg, models)
		if err != nil {
			return nil, err
		}
		e.sess = s
	}
	for i := 0; i < cfg.Workers; i++ {
		w, err := newWorker(&e.cfg, models, e.sess)
		if err != nil {
			e.free()
			return nil, err
		}
		e.workers = append(e.workers, w)
		e.pool <- w
	}
	cfg.Logger.Info("face engine ready", "workers", cfg.Workers, "runtime", cfg.Runtime,
		"intra_op_threads", cfg.IntraOpThreads, "opencv_threads", OpenCVThreads(), "model", ModelVersion)
	return e, nil
}

// free releases the workers and the sessions; no call may be running.
func (e *Engine) free() {
	for _, w := range e.workers {
		w.close()
	}
	if e.sess != nil {
		e.sess.close()
	}
}

// Workers is the pool size.
func (e *Engine) Workers() int { return e.cfg.Workers }

// Close waits for running calls to finish and frees the networks; calls
// waiting for a worker, and later calls, get ErrClosed.
func (e *Engine) Close() error {
	e.once.Do(func() {
		close(e.done)
		for range e.workers {
			<-e.pool // wait for every worker to come back
		}
		e.free()
	})
	return nil
}

func (e *Engine) acquire(ctx context.Context) (*worker, error) {
	select {
	case <-e.done:
		return nil, ErrClosed
	default:
	}
	select {
	case w := <-e.pool:
		select {
		case <-e.done: // lost a race with Close: hand the worker back to it
			e.pool <- w
			return nil, ErrClosed
		default:
			return w, nil
		}
	case <-e.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *Engine) release(w *worker) { e.pool <- w }

// withImage checks and decodes an encoded photo, takes a worker and runs
// fn with both; the image is freed and the worker returned afterwards.
func withImage[T any](ctx context.Context, e *Engine, data []byte, fn func(*worker, gocv.Mat) (T, error)) (T, error) {
	var zero T
	if _, _, err := Check(data, e.cfg.Limits); err != nil {
		return zero, err
	}
	return withMat(ctx, e, func() (gocv.Mat, error) { return decode(data) }, fn)
}

// withMat takes a worker, makes the image with mk and runs fn on both.
func withMat[T any](ctx context.Context, e *Engine, mk func() (gocv.Mat, error), fn func(*worker, gocv.Mat) (T, error)) (T, error) {
	var zero T
	w, err := e.acquire(ctx)
	if err != nil {
		return zero, err
	}
	defer e.release(w)
	img, err := mk()
	if err != nil {
		return zero, err
	}
	defer img.Close()
	return fn(w, img)
}

// Process decodes an encoded JPEG or PNG photo and runs the pipeline.
func (e *Engine) Process(ctx context.Context, data []byte, opts Options) (*Result, error) {
	if !opts.Timings {
		return withImage(ctx, e, data, func(w *worker, img gocv.Mat) (*Result, error) { return w.run(img, opts) })
	}
	runtime.LockOSThread() // thread CPU times
	defer runtime.UnlockOSThread()
	c := clock{t: &Timings{}}
	c.start()
	if _, _, err := Check(data, e.cfg.Limits); err != nil {
		return nil, err
	}
	c.stop(stageDecode)
	return withMat(ctx, e, func() (gocv.Mat, error) {
		c.start()
		defer c.stop(stageDecode)
		return decode(data)
	}, func(w *worker, img gocv.Mat) (*Result, error) { return w.timed(c.t, img, opts) })
}

// ProcessFrame runs the pipeline on a raw BGR frame.
func (e *Engine) ProcessFrame(ctx context.Context, f Frame, opts Options) (*Result, error) {
	if err := e.checkFrame(f); err != nil {
		return nil, err
	}
	if opts.Timings {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	return withMat(ctx, e, func() (gocv.Mat, error) { return frameMat(f) },
		func(w *worker, img gocv.Mat) (*Result, error) {
			if opts.Timings {
				return w.timed(&Timings{}, img, opts)
			}
			return w.run(img, opts)
		})
}

// Analyze is the cheap per-frame entry point for liveness: box, 68
// landmarks and the face count always; the anti-spoof score and embedding
// only when asked. Quality gates are off and several faces are allowed
// (the largest is chosen); only "no face" is an error.
func (e *Engine) Analyze(ctx context.Context, f Frame, embedding, antiSpoof bool) (*Result, error) {
	return e.ProcessFrame(ctx, f, Options{
		Embedding: embedding, AntiSpoof: antiSpoof, AllowSeveral: true, SkipGates: true,
	})
}

// EmbedAligned embeds the face of an encoded image aligned from the given
// five points, skipping detection and landmarks (golden tests, debugging).
func (e *Engine) EmbedAligned(ctx context.Context, data []byte, five [5]Point) ([]float32, error) {
	return withImage(ctx, e, data, func(w *worker, img gocv.Mat) ([]float32, error) {
		w.align(img, five)
		return w.embed()
	})
}

// Detect returns every face found in an encoded image, best score first.
func (e *Engine) Detect(ctx context.Context, data []byte) ([]Detection, error) {
	return withImage(ctx, e, data, func(w *worker, img gocv.Mat) ([]Detection, error) { return w.detect(img) })
}

func (e *Engine) checkFrame(f Frame) error {
	if f.Width <= 0 || f.Height <= 0 || len(f.BGR) != f.Width*f.Height*3 {
		return fmt.Errorf("%w: %dx%d with %d bytes", ErrBadFrame, f.Width, f.Height, len(f.BGR))
	}
	l := e.cfg.Limits
	if f.Width > l.MaxSide || f.Height > l.MaxSide || f.Width*f.Height > l.MaxPixels {
		return fmt.Errorf("%w: frame %dx%d", ErrTooLarge, f.Width, f.Height)
	}
	return nil
}

// decode runs OpenCV's decoder on bytes that passed Check (a JPEG that
// decodeJPEG takes skips OpenCV's slow byte swap, with the same pixels).
func decode(data []byte) (gocv.Mat, error) {
	if Sniff(data) == FormatJPEG {
		if img, ok := decodeJPEG(data); ok {
			return img, nil
		}
	}
	img, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 {
		img.Close()
		return gocv.Mat{}, fmt.Errorf("%w: decoder failed", ErrCorrupt)
	}
	return img, nil
}

func frameMat(f Frame) (gocv.Mat, error) {
	m := gocv.NewMatWithSize(f.Height, f.Width, gocv.MatTypeCV8UC3)
	p, err := m.DataPtrUint8()
	if err != nil {
		m.Close()
		return gocv.Mat{}, err
	}
	copy(p, f.BGR)
	return m, nil
}
