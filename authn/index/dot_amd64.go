package index

import "golang.org/x/sys/cpu"

var (
	useVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI
	useAVX2 = cpu.X86.HasAVX2
)

// dotRowsAVX2 computes out[i] = q . row i for len(out) rows of len(q)
// int8 codes (len(q) a multiple of 64): sign-extend 16 codes to int16,
// VPMADDWD with the int16 query, accumulate in int32. Go's compiler does
// not vectorise, and the scan is the whole cost of a 1:N query.
//
//go:noescape
func dotRowsAVX2(q *int16, codes *int8, out *int32, dim, rows int)

// dotRowsVNNI is the AVX-512 VNNI kernel: 64 byte products per
// instruction (see dot_amd64.s).
//
//go:noescape
func dotRowsVNNI(q *uint8, codes *int8, out *int32, dim, rows int)

func dotRows(q *query, codes []int8, out []int32) {
	if len(out) == 0 {
		return
	}
	if len(codes) < len(out)*len(q.i16) {
		panic("index: short code slab")
	}
	switch {
	case useVNNI:
		dotRowsVNNI(&q.u8[0], &codes[0], &out[0], len(q.u8), len(out))
	case useAVX2:
		dotRowsAVX2(&q.i16[0], &codes[0], &out[0], len(q.i16), len(out))
	default:
		dotRowsGo(q.i16, codes, out)
	}
}
