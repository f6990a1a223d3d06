package postgres

import "testing"

func TestRebind(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"none", "SELECT 1", "SELECT 1"},
		{"several", "a = ? AND b = ? LIMIT ?", "a = $1 AND b = $2 LIMIT $3"},
		{"ten", "??????????", "$1$2$3$4$5$6$7$8$9$10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rebind(tc.in); got != tc.want {
				t.Fatalf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
