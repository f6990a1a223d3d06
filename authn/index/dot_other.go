//go:build !amd64

package index

func dotRows(q *query, codes []int8, out []int32) { dotRowsGo(q.i16, codes, out) }
