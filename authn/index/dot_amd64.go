package index

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2

// dotRowsAVX2 computes out[i] = q . row i for len(out) rows of len(q)
// int8 codes (len(q) a multiple of 64): sign-extend 16 codes to int16,
// VPMADDWD with the int16 query, accumulate in int32. Go's compiler does
// not vectorise, and the scan is the whole cost of a 1:N query.
//
//go:noescape
func dotRowsAVX2(q *int16, codes *int8, out *int32, dim, rows int)

func dotRows(q []int16, codes []int8, out []int32) {
	if useAVX2 && len(out) > 0 {
		if len(codes) < len(out)*len(q) {
			panic("index: short code slab")
		}
		dotRowsAVX2(&q[0], &codes[0], &out[0], len(q), len(out))
		return
	}
	dotRowsGo(q, codes, out)
}
