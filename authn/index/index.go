// Package index is the in-memory 1:N face search used for duplicate
// detection at enrollment: int8-quantised templates (scale 127) in one
// contiguous slab, a full scan by integer dot product to pick candidates,
// then exact float re-ranking of the best candidates.
//
// Memory per template: Dim bytes of int8 codes, plus (when float vectors are
// kept, the default) 4*Dim bytes for re-ranking, plus the ID string and an
// id->position map entry. The index is safe for concurrent use; searches
// share a read lock.
package index

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"unsafe"
)

// Scale maps an L2-normalised component in [-1, 1] to int8.
const Scale = 127

var (
	// ErrDim: a vector of the wrong length.
	ErrDim = errors.New("index: wrong vector length")
	// ErrEmptyID: templates need an ID.
	ErrEmptyID = errors.New("index: empty id")
)

// Match is one search result. Score is the float cosine when re-ranking
// vectors are available, else the int8 estimate.
type Match struct {
	ID    string
	Score float32
}

// Fetch returns the float vector for an ID (re-ranking when the index does
// not keep float vectors); ok false when the ID is gone.
type Fetch func(id string) (vec []float32, ok bool)

// Config configures an Index.
type Config struct {
	Dim int // vector length, default 512
	// DropFloats keeps only the int8 codes (Dim bytes per template) and
	// re-ranks through Fetch; by default float vectors are kept in memory.
	DropFloats bool
	Fetch      Fetch
	// Rerank is how many int8 candidates are re-scored exactly: at least
	// this many and at least 4k. Default 64.
	Rerank int
	// Parallel splits a scan across this many goroutines; default 1 (the
	// caller already runs requests concurrently).
	Parallel int
}

// Index is the 1:N search structure.
type Index struct {
	cfg   Config
	mu    sync.RWMutex
	codes []int8    // n*Dim, row i belongs to ids[i]
	vecs  []float32 // n*Dim when floats are kept
	ids   []string
	pos   map[string]int
}

// New makes an empty index.
func New(cfg Config) (*Index, error) {
	if cfg.Dim == 0 {
		cfg.Dim = 512
	}
	if cfg.Dim < 0 || cfg.Dim%64 != 0 {
		return nil, fmt.Errorf("index: dim %d must be a positive multiple of 64", cfg.Dim)
	}
	if cfg.DropFloats && cfg.Fetch == nil {
		return nil, errors.New("index: DropFloats needs Fetch")
	}
	if cfg.Rerank <= 0 {
		cfg.Rerank = 64
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	return &Index{cfg: cfg, pos: map[string]int{}}, nil
}

// Len is the number of templates.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.ids)
}

// Quantize writes round(v*127) clamped to [-127, 127] into dst.
func Quantize(dst []int8, v []float32) {
	for i, f := range v {
		q := math.Round(float64(f) * Scale)
		dst[i] = int8(max(-Scale, min(Scale, q)))
	}
}

// normalized returns v scaled to unit length (a copy).
func normalized(v []float32) []float32 {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	out := slices.Clone(v)
	if s > 0 {
		inv := float32(1 / math.Sqrt(s))
		for i := range out {
			out[i] *= inv
		}
	}
	return out
}

// Add inserts or replaces the template of id. Vectors are L2-normalised
// on the way in.
func (x *Index) Add(id string, vec []float32) error {
	if id == "" {
		return ErrEmptyID
	}
	if len(vec) != x.cfg.Dim {
		return fmt.Errorf("%w: %d, want %d", ErrDim, len(vec), x.cfg.Dim)
	}
	v := normalized(vec)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addLocked(id, v)
	return nil
}

func (x *Index) addLocked(id string, v []float32) {
	d := x.cfg.Dim
	i, ok := x.pos[id]
	if !ok {
		i = len(x.ids)
		x.ids = append(x.ids, id)
		x.codes = append(x.codes, make([]int8, d)...)
		if !x.cfg.DropFloats {
			x.vecs = append(x.vecs, make([]float32, d)...)
		}
		x.pos[id] = i
	}
	Quantize(x.codes[i*d:(i+1)*d], v)
	if !x.cfg.DropFloats {
		copy(x.vecs[i*d:(i+1)*d], v)
	}
}

// Remove deletes id (swap with the last row); false when absent.
func (x *Index) Remove(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	i, ok := x.pos[id]
	if !ok {
		return false
	}
	d := x.cfg.Dim
	last := len(x.ids) - 1
	if i != last {
		copy(x.codes[i*d:(i+1)*d], x.codes[last*d:])
		if !x.cfg.DropFloats {
			copy(x.vecs[i*d:(i+1)*d], x.vecs[last*d:])
		}
		x.ids[i] = x.ids[last]
		x.pos[x.ids[i]] = i
	}
	x.ids = x.ids[:last]
	x.codes = x.codes[:last*d]
	if !x.cfg.DropFloats {
		x.vecs = x.vecs[:last*d]
	}
	delete(x.pos, id)
	return true
}

// Load adds every (id, vector) the iterator yields (for example a store
// scan), stopping at the first bad vector.
func (x *Index) Load(seq func(yield func(id string, vec []float32) bool)) error {
	var err error
	seq(func(id string, vec []float32) bool {
		err = x.Add(id, vec)
		return err == nil
	})
	return err
}

// Search returns the k templates most similar to q, best first.
func (x *Index) Search(q []float32, k int) ([]Match, error) {
	if len(q) != x.cfg.Dim {
		return nil, fmt.Errorf("%w: %d, want %d", ErrDim, len(q), x.cfg.Dim)
	}
	if k <= 0 {
		return nil, nil
	}
	qn := normalized(q)
	qq := newQuery(qn)

	x.mu.RLock()
	n := len(x.ids)
	r := min(n, max(x.cfg.Rerank, 4*k))
	cands := x.scan(qq, r)
	type scored struct {
		row   int
		id    string
		score float32
	}
	out := make([]scored, 0, len(cands))
	d := x.cfg.Dim
	for _, c := range cands {
		s := float32(c.dot) / (Scale * Scale)
		if !x.cfg.DropFloats {
			s = dotF32(qn, x.vecs[c.row*d:(c.row+1)*d])
		}
		out = append(out, scored{c.row, x.ids[c.row], s})
	}
	x.mu.RUnlock()

	if x.cfg.DropFloats {
		// Re-fetch outside the lock: Fetch may go to the store.
		kept := out[:0]
		for _, o := range out {
			v, ok := x.cfg.Fetch(o.id)
			if !ok || len(v) != d {
				continue
			}
			o.score = dotF32(qn, normalized(v))
			kept = append(kept, o)
		}
		out = kept
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].score != out[j].score {
			return out[i].score > out[j].score
		}
		return out[i].id < out[j].id
	})
	res := make([]Match, 0, min(k, len(out)))
	for _, o := range out[:min(k, len(out))] {
		res = append(res, Match{ID: o.id, Score: o.score})
	}
	return res, nil
}

// query is a quantised query in the forms the kernels take: int16 codes
// (AVX2, portable) and codes + 128 as unsigned bytes (AVX-512 VNNI).
type query struct {
	i16 []int16
	u8  []uint8
}

func newQuery(v []float32) *query {
	q8 := make([]int8, len(v))
	Quantize(q8, v)
	q := &query{i16: make([]int16, len(v)), u8: make([]uint8, len(v))}
	for i, c := range q8 {
		q.i16[i] = int16(c)
		q.u8[i] = uint8(int16(c) + 128)
	}
	return q
}

type cand struct {
	row int
	dot int32
}

// scan scores every row by int8 dot product and keeps the r best.
// Caller holds the read lock.
func (x *Index) scan(q *query, r int) []cand {
	n := len(x.ids)
	if n == 0 || r == 0 {
		return nil
	}
	parts := min(x.cfg.Parallel, max(1, n/4096), runtime.GOMAXPROCS(0))
	if parts <= 1 {
		return x.scanRange(q, 0, n, r)
	}
	var wg sync.WaitGroup
	res := make([][]cand, parts)
	for p := range parts {
		lo, hi := n*p/parts, n*(p+1)/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[p] = x.scanRange(q, lo, hi, r)
		}()
	}
	wg.Wait()
	var all []cand
	for _, c := range res {
		all = append(all, c...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].dot > all[j].dot })
	return all[:min(r, len(all))]
}

const block = 1024 // rows scored per kernel call

func (x *Index) scanRange(q *query, lo, hi, r int) []cand {
	d := x.cfg.Dim
	h := newTopK(r)
	dots := make([]int32, block)
	for s := lo; s < hi; s += block {
		e := min(hi, s+block)
		dotRows(q, x.codes[s*d:e*d], dots[:e-s])
		for i, v := range dots[:e-s] {
			h.push(s+i, v)
		}
	}
	return h.sorted()
}

func dotF32(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// dotRowsGo is the portable kernel: out[i] = q . codes[row i], integer
// accumulation, unrolled by 8.
func dotRowsGo(q []int16, codes []int8, out []int32) {
	d := len(q)
	for r := range out {
		row := codes[r*d : (r+1)*d : (r+1)*d]
		q := q[:len(row)]
		var a0, a1, a2, a3 int32
		for i := 0; i+8 <= len(row); i += 8 {
			a0 += int32(q[i])*int32(row[i]) + int32(q[i+4])*int32(row[i+4])
			a1 += int32(q[i+1])*int32(row[i+1]) + int32(q[i+5])*int32(row[i+5])
			a2 += int32(q[i+2])*int32(row[i+2]) + int32(q[i+6])*int32(row[i+6])
			a3 += int32(q[i+3])*int32(row[i+3]) + int32(q[i+7])*int32(row[i+7])
		}
		out[r] = a0 + a1 + a2 + a3
	}
}

// topK keeps the r largest dots in a min-heap.
type topK struct {
	r int
	h []cand
}

func newTopK(r int) *topK { return &topK{r: r, h: make([]cand, 0, r)} }

func (t *topK) push(row int, dot int32) {
	if len(t.h) < t.r {
		t.h = append(t.h, cand{row, dot})
		// sift up
		i := len(t.h) - 1
		for i > 0 {
			p := (i - 1) / 2
			if t.h[p].dot <= t.h[i].dot {
				break
			}
			t.h[p], t.h[i] = t.h[i], t.h[p]
			i = p
		}
		return
	}
	if dot <= t.h[0].dot {
		return
	}
	t.h[0] = cand{row, dot}
	i := 0
	for {
		l, rr, m := 2*i+1, 2*i+2, i
		if l < len(t.h) && t.h[l].dot < t.h[m].dot {
			m = l
		}
		if rr < len(t.h) && t.h[rr].dot < t.h[m].dot {
			m = rr
		}
		if m == i {
			return
		}
		t.h[m], t.h[i] = t.h[i], t.h[m]
		i = m
	}
}

func (t *topK) sorted() []cand {
	out := slices.Clone(t.h)
	sort.Slice(out, func(i, j int) bool { return out[i].dot > out[j].dot })
	return out
}

// SumCodes reads every code byte once, 8 at a time, and returns their
// wrapped sum: the memory-bandwidth floor of a full scan over the index's own
// slab, which benchmarks compare Search against.
func (x *Index) SumCodes() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := len(x.codes) / 8
	if n == 0 {
		return 0
	}
	words := unsafe.Slice((*uint64)(unsafe.Pointer(&x.codes[0])), n)
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+4 <= len(words); i += 4 {
		s0 += words[i]
		s1 += words[i+1]
		s2 += words[i+2]
		s3 += words[i+3]
	}
	for ; i < len(words); i++ {
		s0 += words[i]
	}
	return s0 + s1 + s2 + s3
}
