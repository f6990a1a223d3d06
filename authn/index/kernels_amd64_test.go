package index

import (
	"slices"
	"testing"
)

// testKernels checks every assembly kernel the CPU supports.
func testKernels(t *testing.T, q *query, codes []int8, want []int32) {
	got := make([]int32, len(want))
	if useAVX2 {
		dotRowsAVX2(&q.i16[0], &codes[0], &got[0], len(q.i16), len(got))
		if !slices.Equal(got, want) {
			t.Errorf("AVX2 kernel differs")
		}
	}
	if useVNNI {
		clear(got)
		dotRowsVNNI(&q.u8[0], &codes[0], &got[0], len(q.u8), len(got))
		if !slices.Equal(got, want) {
			t.Errorf("VNNI kernel differs: %v vs %v", got[:3], want[:3])
		}
	}
}

func benchKernels(b *testing.B, q *query, codes []int8, out []int32) {
	if useAVX2 {
		b.Run("avx2", func(b *testing.B) {
			b.SetBytes(int64(len(codes)))
			for b.Loop() {
				dotRowsAVX2(&q.i16[0], &codes[0], &out[0], len(q.i16), len(out))
			}
		})
	}
	if useVNNI {
		b.Run("vnni", func(b *testing.B) {
			b.SetBytes(int64(len(codes)))
			for b.Loop() {
				dotRowsVNNI(&q.u8[0], &codes[0], &out[0], len(q.u8), len(out))
			}
		})
	}
}
