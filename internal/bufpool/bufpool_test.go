package bufpool

import "testing"

// TestGet: the length asked, a slice given back reused when large enough
// (its contents kept), a new one when not.
func TestGet(t *testing.T) {
	var p Pool[int64]
	a := p.Get(100)
	if len(*a) != 100 {
		t.Fatalf("len %d", len(*a))
	}
	(*a)[0] = 7
	p.Put(a)
	b := p.Get(50)
	if len(*b) != 50 {
		t.Fatalf("len %d", len(*b))
	}
	if b == a && (*b)[0] != 7 {
		t.Error("a reused slice lost its contents")
	}
	p.Put(b)
	if c := p.Get(1000); len(*c) != 1000 || cap(*c) < 1000 {
		t.Fatalf("len %d cap %d", len(*c), cap(*c))
	}
}
