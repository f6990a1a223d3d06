package media

import "sync"

// DefaultPoolBytes is FramePool's MaxBytes when it is zero: 215 frames of
// 360x288 (nearly three 3 s clips at 25 fps) or 72 of 640x480.
const DefaultPoolBytes = 64 << 20

// FramePool keeps the pixel buffers of released clips (Clip.Release) for
// the next decodes. A fresh buffer has its pages faulted in and zeroed
// before the decoder overwrites it: about a fifth of the CPU of decoding a
// 3 s clip. The pool holds at most MaxBytes of free buffers, so it adds a
// bounded amount to what decodes in flight take. The zero value is ready;
// it is safe for concurrent use.
type FramePool struct {
	// MaxBytes bounds the free buffers kept; 0 means DefaultPoolBytes,
	// negative keeps none.
	MaxBytes int64

	mu    sync.Mutex
	free  map[int][][]byte // by length
	bytes int64
}

func (p *FramePool) limit() int64 {
	if p.MaxBytes == 0 {
		return DefaultPoolBytes
	}
	return p.MaxBytes
}

// Get returns a buffer of n bytes: a free one of that length with its old
// contents when there is one, else a new one. A miss drops one free buffer
// of another length, so that a pool filled by clips of an earlier size
// makes room for the current one. A nil pool always makes a new one.
func (p *FramePool) Get(n int) []byte {
	if p == nil {
		return make([]byte, n)
	}
	p.mu.Lock()
	if l := p.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[n] = l[:len(l)-1]
		p.bytes -= int64(n)
		p.mu.Unlock()
		return b
	}
	for m, l := range p.free {
		if len(l) > 0 {
			l[len(l)-1] = nil
			p.free[m] = l[:len(l)-1]
			p.bytes -= int64(m)
			break
		}
	}
	p.mu.Unlock()
	return make([]byte, n)
}

// Put gives b back for a later Get; the pool (or a nil one) drops it when
// it is full. Nothing may use b after.
func (p *FramePool) Put(b []byte) {
	n := len(b)
	if p == nil || n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bytes+int64(n) > p.limit() {
		return
	}
	if p.free == nil {
		p.free = map[int][][]byte{}
	}
	p.free[n] = append(p.free[n], b)
	p.bytes += int64(n)
}

// Adopt makes c.Release give bufs (c's frame buffers, from p.Get, each
// listed once however many frames share it) back to p.
func (p *FramePool) Adopt(c *Clip, bufs [][]byte) {
	if p == nil {
		return
	}
	c.release = func() {
		for _, b := range bufs {
			p.Put(b)
		}
	}
}
