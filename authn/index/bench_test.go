package index

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"unsafe"
)

func TestConcurrent(t *testing.T) {
	x, _ := New(Config{Dim: 64, Parallel: 2})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for i := range 300 {
				id := fmt.Sprintf("g%d-%d", g, i%50)
				if i%3 == 2 {
					x.Remove(id)
					continue
				}
				if err := x.Add(id, randVec(r, 64)); err != nil {
					t.Error(err)
					return
				}
				if _, err := x.Search(randVec(r, 64), 3); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Every remaining row must be findable by its own vector.
	x.mu.RLock()
	defer x.mu.RUnlock()
	if len(x.ids) != len(x.pos) || len(x.codes) != len(x.ids)*64 {
		t.Fatalf("inconsistent: %d ids, %d pos, %d codes", len(x.ids), len(x.pos), len(x.codes))
	}
	for i, id := range x.ids {
		if x.pos[id] != i {
			t.Fatalf("pos[%s] = %d, want %d", id, x.pos[id], i)
		}
	}
}

// synthetic returns a deterministic unit vector for an ID, so a
// DropFloats index can re-fetch it without holding 2 KiB per template.
func synthetic(id string) []float32 {
	h := fnv.New64a()
	h.Write([]byte(id))
	s := h.Sum64() | 1
	v := make([]float32, 512)
	for i := range v { // xorshift: cheap enough that re-fetching is not the benchmark
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		v[i] = float32(int64(s>>40)-1<<23) / (1 << 23)
	}
	return normalized(v)
}

var (
	galleries = map[int]*Index{}
	heapPer   = map[int]float64{}
)

// gallery builds (once per size) an index of n synthetic templates. Rows
// are filled directly with random codes, which is what Add would store for
// random unit vectors, to keep set-up of 1M rows short.
func gallery(b *testing.B, n int) (*Index, float64) {
	x, ok := galleries[n]
	if !ok {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		x, _ = New(Config{DropFloats: true, Fetch: func(id string) ([]float32, bool) { return synthetic(id), true }})
		r := rand.New(rand.NewPCG(uint64(n), 7))
		x.codes = make([]int8, n*512)
		x.ids = make([]string, n)
		for i := range n {
			id := fmt.Sprintf("citizen-%08d", i)
			x.ids[i] = id
			x.pos[id] = i
			if i < 64 {
				Quantize(x.codes[i*512:(i+1)*512], synthetic(id))
				continue
			}
			row := x.codes[i*512 : (i+1)*512]
			for j := 0; j < 512; j += 8 {
				u := r.Uint64()
				for k := range 8 {
					// about N(0, 127/sqrt(512)) like a unit vector's codes
					row[j+k] = int8(int(u>>(8*k))&31 - 16)
				}
			}
		}
		galleries[n] = x
		runtime.GC()
		runtime.ReadMemStats(&after)
		heapPer[n] = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	}
	return x, heapPer[n]
}

// BenchmarkSearch: one query over n templates on one goroutine (int8 scan
// + re-ranking of 64 candidates by re-fetch), reported with the memory per
// template and the time of a plain byte-summing pass over the same slab.
func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, heap := gallery(b, n)
			q := synthetic("citizen-00000007")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m, err := x.Search(q, 5)
				if err != nil || m[0].ID != "citizen-00000007" {
					b.Fatalf("search: %v %v", m, err)
				}
			}
			b.ReportMetric(heap, "heapB/template") // after the loop: ResetTimer clears metrics
		})
	}
}

// BenchmarkScanBound sums every byte of the same slab 8 at a time: the
// memory-bandwidth floor of any full scan. Search time / this time is the
// ratio to the bound.
func BenchmarkScanBound(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, _ := gallery(b, n)
			words := unsafe.Slice((*uint64)(unsafe.Pointer(&x.codes[0])), len(x.codes)/8)
			b.SetBytes(int64(len(x.codes)))
			var sink uint64
			for b.Loop() {
				var s0, s1, s2, s3 uint64
				for i := 0; i+4 <= len(words); i += 4 {
					s0 += words[i]
					s1 += words[i+1]
					s2 += words[i+2]
					s3 += words[i+3]
				}
				sink += s0 + s1 + s2 + s3
			}
			_ = sink
		})
	}
}

// BenchmarkKernel compares the AVX2 and portable kernels on 1024 rows.
func BenchmarkKernel(b *testing.B) {
	v := make([]float32, 512)
	for i := range v {
		v[i] = float32(i%255-127) / 1000
	}
	q := newQuery(v)
	codes := make([]int8, 512*block)
	out := make([]int32, block)
	b.Run("dispatch", func(b *testing.B) {
		b.SetBytes(int64(len(codes)))
		for b.Loop() {
			dotRows(q, codes, out)
		}
	})
	benchKernels(b, q, codes, out)
	b.Run("go", func(b *testing.B) {
		b.SetBytes(int64(len(codes)))
		for b.Loop() {
			dotRowsGo(q.i16, codes, out)
		}
	})
}

// BenchmarkScanOnly is the int8 kernel alone over the whole slab (no
// top-k, no re-ranking): what the scan costs by itself.
func BenchmarkScanOnly(b *testing.B) {
	for _, n := range []int{1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, _ := gallery(b, n)
			q := newQuery(make([]float32, 512))
			out := make([]int32, block)
			b.SetBytes(int64(len(x.codes)))
			for b.Loop() {
				for s := 0; s < n; s += block {
					e := min(n, s+block)
					dotRows(q, x.codes[s*512:e*512], out[:e-s])
				}
			}
		})
	}
}
