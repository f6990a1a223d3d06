package index_test

import (
	"fmt"

	"github.com/trustid/trustid/authn/index"
)

func Example() {
	x, _ := index.New(index.Config{Dim: 64})
	unit := func(i int) []float32 {
		v := make([]float32, 64)
		v[i] = 1
		return v
	}
	_ = x.Add("alice", unit(0))
	_ = x.Add("bob", unit(1))
	_ = x.Add("carol", unit(2))
	x.Remove("carol")

	probe := unit(1)
	probe[0] = 0.2 // mostly bob, a little alice
	for _, m := range must(x.Search(probe, 2)) {
		fmt.Printf("%s %.3f\n", m.ID, m.Score)
	}
	// Output:
	// bob 0.981
	// alice 0.196
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
