//go:build !amd64

package index

func dotRows(q []int16, codes []int8, out []int32) { dotRowsGo(q, codes, out) }
