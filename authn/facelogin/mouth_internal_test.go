package facelogin

import (
	"slices"
	"testing"
)

func TestStrided(t *testing.T) {
	tests := []struct {
		name          string
		from, step, n int
		want          []int
	}{
		{name: "forward, the last frame added", from: 2, step: 3, n: 10, want: []int{2, 5, 8, 9}},
		{name: "forward, the last frame on the grid", from: 0, step: 3, n: 10, want: []int{0, 3, 6, 9}},
		{name: "backward, frame 0 added", from: 5, step: -3, n: 10, want: []int{5, 2, 0}},
		{name: "backward from before frame 0: frame 0 alone", from: -1, step: -3, n: 10, want: []int{0}},
		{name: "every frame", from: 0, step: 1, n: 3, want: []int{0, 1, 2}},
		{name: "start on the last frame", from: 9, step: 3, n: 10, want: []int{9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strided(tt.from, tt.step, tt.n); !slices.Equal(got, tt.want) {
				t.Errorf("strided(%d, %d, %d) = %v, want %v", tt.from, tt.step, tt.n, got, tt.want)
			}
		})
	}
}
