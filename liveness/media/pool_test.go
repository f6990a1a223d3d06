package media

import (
	"bytes"
	"context"
	"testing"
)

func TestFramePool(t *testing.T) {
	type step struct {
		put   int // Put a buffer of this length (0: Get instead)
		get   int
		reuse bool // the Get returns a buffer the pool kept
		bytes int64
	}
	tests := []struct {
		name  string
		max   int64
		steps []step
	}{
		{"reuse", 0, []step{{put: 100, bytes: 100}, {get: 100, reuse: true, bytes: 0}, {get: 100, bytes: 0}}},
		{"bounded", 250, []step{{put: 100, bytes: 100}, {put: 100, bytes: 200}, {put: 100, bytes: 200}, {get: 100, reuse: true, bytes: 100}}},
		{"a miss drops another size", 0, []step{{put: 100, bytes: 100}, {put: 100, bytes: 200}, {get: 50, bytes: 100}, {get: 100, reuse: true, bytes: 0}}},
		{"none kept", -1, []step{{put: 100, bytes: 0}, {get: 100, bytes: 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &FramePool{MaxBytes: tt.max}
			kept := map[*byte]bool{}
			for i, s := range tt.steps {
				if s.put > 0 {
					b := make([]byte, s.put)
					n := p.bytes
					p.Put(b)
					if p.bytes > n {
						kept[&b[0]] = true
					}
				} else {
					b := p.Get(s.get)
					if len(b) != s.get {
						t.Fatalf("step %d: len %d, want %d", i, len(b), s.get)
					}
					if got := kept[&b[0]]; got != s.reuse {
						t.Fatalf("step %d: reused %v, want %v", i, got, s.reuse)
					}
				}
				if p.bytes != s.bytes {
					t.Fatalf("step %d: %d bytes kept, want %d", i, p.bytes, s.bytes)
				}
			}
		})
	}
	var nilPool *FramePool
	if b := nilPool.Get(10); len(b) != 10 {
		t.Fatalf("nil pool: len %d", len(b))
	}
	nilPool.Put(make([]byte, 10))
	c := &Clip{}
	nilPool.Adopt(c, nil)
	c.Release()
}

// TestDecoderPoolReuse: the ffmpeg child's frames read into the buffers of
// a released clip equal those read into fresh memory.
func TestDecoderPoolReuse(t *testing.T) {
	needFFmpeg(t)
	first := testdata(t, "talking/grid/bbaf2n.mpg")
	second := testdata(t, "talking/grid/lbax4n.mpg")
	fresh := testDecoder()
	fresh.Pool.MaxBytes = -1
	pooled := testDecoder()
	c1, err := pooled.DecodeFile(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c1.Frames {
		clear(c1.Frames[i].BGR)
	}
	c1.Release()
	if pooled.Pool.bytes == 0 {
		t.Fatal("nothing given back to the pool")
	}
	want, err := fresh.DecodeFile(context.Background(), second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pooled.DecodeFile(context.Background(), second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Frames) != len(want.Frames) {
		t.Fatalf("%d frames, want %d", len(got.Frames), len(want.Frames))
	}
	for i := range got.Frames {
		if !bytes.Equal(got.Frames[i].BGR, want.Frames[i].BGR) {
			t.Fatalf("frame %d differs from a fresh decode", i)
		}
	}
}
