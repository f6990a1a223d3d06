package main

import (
	"errors"
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/trustid/trustid/internal/config"
)

func TestMemoryAvailable(t *testing.T) {
	const meminfo = "MemTotal:       24683748 kB\nMemFree:        22341800 kB\n"
	tests := []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"machine only", map[string]string{"/proc/meminfo": meminfo}, 24683748 << 10},
		{"cgroup v2 without limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "max\n"}, 24683748 << 10},
		{"cgroup v2 limit below the machine", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "2147483648\n"}, 2 << 30},
		{"cgroup v1 unlimited is a huge number", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 24683748 << 10},
		{"cgroup only", map[string]string{"/sys/fs/cgroup/memory.max": "1073741824"}, 1 << 30},
		{"nothing readable", nil, 0},
		{"garbage", map[string]string{"/proc/meminfo": "MemTotal: lots kB\n", "/sys/fs/cgroup/memory.max": "-5"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := func(p string) ([]byte, error) {
				if s, ok := tt.files[p]; ok {
					return []byte(s), nil
				}
				return nil, errors.New("absent")
			}
			if got := memoryAvailable(read); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

// tuneGC sets the configured values unless GOGC / GOMEMLIMIT are set.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	read := func(p string) ([]byte, error) {
		if p == "/proc/meminfo" {
			return []byte("MemTotal: 1048576 kB\n"), nil // 1 GiB
		}
		return nil, errors.New("absent")
	}
	l := config.Limits{GCPercent: 400, MemoryLimitPercent: 50}
	tuneGC(l, func(string) string { return "" }, read, log)
	if got := debug.SetGCPercent(-1); got != 400 {
		t.Errorf("gc percent %d, want 400", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Errorf("memory limit %d, want %d", got, 512<<20)
	}
	// With both variables set, neither is touched.
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(1 << 40)
	tuneGC(l, func(k string) string { return map[string]string{"GOGC": "150", "GOMEMLIMIT": "1TiB"}[k] }, read, log)
	if got := debug.SetGCPercent(-1); got != 150 {
		t.Errorf("gc percent %d, want 150 (GOGC wins)", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("memory limit %d, want 1 TiB (GOMEMLIMIT wins)", got)
	}
}
