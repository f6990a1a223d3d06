package main

import (
	"bufio"
	"bytes"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/trustid/trustid/internal/config"
)

// tuneGC applies limits.gc_percent and limits.memory_limit_percent to the
// Go runtime, each unless its environment variable (GOGC, GOMEMLIMIT) is
// set: the runtime has applied that one already, and it wins.
func tuneGC(l config.Limits, getenv func(string) string, read func(string) ([]byte, error), log *slog.Logger) {
	gc := getenv("GOGC")
	if gc == "" {
		debug.SetGCPercent(l.GCPercent)
		gc = strconv.Itoa(l.GCPercent)
	}
	limit := getenv("GOMEMLIMIT")
	if limit == "" {
		if total := memoryAvailable(read); total > 0 {
			n := total * int64(l.MemoryLimitPercent) / 100
			debug.SetMemoryLimit(n)
			limit = strconv.FormatInt(n>>20, 10) + "MiB"
		} else {
			limit = "none (memory size unknown)"
		}
	}
	log.Info("go runtime", "gc_percent", gc, "memory_limit", limit)
}

// memoryAvailable returns the bytes of memory the process may use: the
// machine's (MemTotal in /proc/meminfo), or its cgroup's limit (v2
// memory.max, v1 memory.limit_in_bytes) when that is lower; 0 when unknown.
func memoryAvailable(read func(string) ([]byte, error)) int64 {
	var total int64
	if b, err := read("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 {
					total = kb << 10
				}
				break
			}
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := read(p)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) means no limit.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}
