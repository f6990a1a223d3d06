package face

import (
	"time"

	"golang.org/x/sys/unix"
)

// StageTime is the time one stage of a call took: wall-clock, and CPU time
// of the calling OS thread, where the stage's work runs (OpenCV is set to
// one thread per worker and ONNX Runtime runs a network on the caller's
// thread when Config.IntraOpThreads is 1, the default; with more intra-op
// threads, their CPU time is not counted).
type StageTime struct {
	Wall time.Duration `json:"wall"`
	CPU  time.Duration `json:"cpu"`
}

// Timings is where one call's time went, stage by stage (Options.Timings).
// A stage that did not run is zero; a stage run more than once (detector
// retries, the flipped embedding) sums its runs.
type Timings struct {
	Decode    StageTime `json:"decode"`     // header check and decoding (Process only)
	Detect    StageTime `json:"detect"`     // resize to 320x240, detector, NMS, every pass
	Landmarks StageTime `json:"landmarks"`  // crop, grey, landmark net
	Align     StageTime `json:"align"`      // five-point fit and warp to 112x112
	Quality   StageTime `json:"quality"`    // sharpness and brightness of the aligned face
	Embed     StageTime `json:"embed"`      // recognition net (twice with Flip)
	AntiSpoof StageTime `json:"anti_spoof"` // crop, resize, anti-spoof net
}

const (
	stageDecode = iota
	stageDetect
	stageLandmarks
	stageAlign
	stageQuality
	stageEmbed
	stageAntiSpoof
)

func (t *Timings) stage(i int) *StageTime {
	switch i {
	case stageDecode:
		return &t.Decode
	case stageDetect:
		return &t.Detect
	case stageLandmarks:
		return &t.Landmarks
	case stageAlign:
		return &t.Align
	case stageQuality:
		return &t.Quality
	case stageEmbed:
		return &t.Embed
	}
	return &t.AntiSpoof
}

// clock times stages into t; with t nil it does nothing. The caller keeps
// the goroutine on one OS thread while it runs (runtime.LockOSThread), or
// the thread CPU times mean nothing.
type clock struct {
	t    *Timings
	wall time.Time
	cpu  time.Duration
}

func (c *clock) start() {
	if c.t == nil {
		return
	}
	c.wall, c.cpu = time.Now(), threadCPU()
}

func (c *clock) stop(stage int) {
	if c.t == nil {
		return
	}
	s := c.t.stage(stage)
	s.Wall += time.Since(c.wall)
	s.CPU += threadCPU() - c.cpu
}

// threadCPU is the CPU time consumed by the calling OS thread (Linux).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
