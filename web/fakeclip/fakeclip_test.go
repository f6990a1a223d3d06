package fakeclip

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func testdata(t *testing.T) string {
	t.Helper()
	d := os.Getenv("TRUSTID_TESTDATA")
	if d == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TRUSTID_TESTDATA not set")
		}
		t.Skip("TRUSTID_TESTDATA not set")
	}
	return d
}

func TestBuild(t *testing.T) {
	d := testdata(t)
	dir := t.TempDir()
	if os.Getenv("FAKECLIP_KEEP") != "" {
		dir = os.Getenv("FAKECLIP_KEEP")
	}
	c, err := Build(context.Background(), Options{Grid: filepath.Join(d, "talking", "grid", "sbwe5n.mpg"), Digits: "4729", Other: "8153", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("slots %v duration %.2f", c.Slots, c.Duration)
}
