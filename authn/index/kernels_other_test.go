//go:build !amd64

package index

import "testing"

func testKernels(t *testing.T, q *query, codes []int8, want []int32) {}

func benchKernels(b *testing.B, q *query, codes []int8, out []int32) {}
