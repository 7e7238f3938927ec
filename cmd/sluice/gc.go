package main

import (
	"bufio"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is the GOGC Sluice runs with when the operator has not
// set one. A proxy's live heap is small (connections, buffers, a few
// structs per request) and it allocates per request, so at the runtime's
// default of 100 the collector runs very often: a CPU profile under load
// put 11–15% of Sluice's CPU in GC (mark assists and background workers).
//
// Measured on the 2-core bench box (fast Go backend, 2 h2c conns per
// server; 8 s runs; CPU s per 10k requests, median of 2 runs, and the
// proxy's peak RSS):
//
//	GOGC  wrk -c500     h2load -c100 -m10  wrk -c2000    peak RSS c500, c2000
//	100   0.613         0.831              0.854          54–59, 121 MiB
//	200   0.554 (-10%)  0.772 (-7%)        0.812 (-5%)    71–80, 167 MiB
//	400   0.545 (-11%)  0.745 (-10%)       0.784 (-8%)   108–134, 263 MiB
//	800   0.549         0.732              -             182–211 MiB
//
// An interleaved A/B of 100 against 400 gave the same: -9% (wrk) and
// -11% (h2load) CPU per request, 5–8% more requests/s, and no p99 change
// at low concurrency (wrk -c1, -c4). Idle connections barely grow (22 to
// 24 KiB each over HTTP/1.1, 32 to 34 KiB over h2c, 5,000 held), as they
// make little garbage. 200 keeps most of the gain (two thirds to all of
// it) for 40% more peak memory where 400 doubles it; beyond 400 the gain is
// within noise while memory keeps growing. Since the data path became
// Sluice's own it allocates far less per request, and 400 no longer
// saves CPU (BENCHMARKS.md, seventeenth session). GOGC in the environment
// wins: GOGC=100 for the runtime's default.
const defaultGCPercent = 200

// memLimitPercent is the share of the cgroup memory limit (a container's
// or a systemd unit's MemoryMax) given to the Go runtime as its soft
// memory limit, so that a heap allowed to grow to 3× the live data under
// defaultGCPercent collects harder near the limit instead of being
// OOM-killed. The rest is headroom for kernel socket buffers, which the
// cgroup also charges. Without a cgroup limit no soft limit is set: the
// runtime's limit is not a cap, and a guessed one would only make the GC
// spin once the live heap outgrew it.
const memLimitPercent = 75

// tuneGC applies defaultGCPercent unless GOGC is set, and a soft memory
// limit from the cgroup unless GOMEMLIMIT is set (the runtime has already
// applied those variables itself).
func tuneGC(environ []string, logger *slog.Logger) {
	gcPercent := "GOGC from the environment"
	if lookupEnv(environ, "GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
		gcPercent = strconv.Itoa(defaultGCPercent)
	}
	memLimit := "none"
	if lookupEnv(environ, "GOMEMLIMIT") != "" {
		memLimit = "GOMEMLIMIT from the environment"
	} else if lim, ok := cgroupMemoryLimit(os.DirFS("/")); ok {
		soft := lim / 100 * memLimitPercent
		debug.SetMemoryLimit(soft)
		memLimit = strconv.FormatInt(soft, 10)
	}
	logger.Debug("gc settings", "gc_percent", gcPercent, "memory_limit_bytes", memLimit)
}

// cgroupMemoryLimit returns the tightest memory limit on this process's
// cgroup and its ancestors, cgroup v2 or v1, reading fsys rooted at "/".
func cgroupMemoryLimit(fsys fs.FS) (int64, bool) {
	f, err := fsys.Open("proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	limit, found := int64(math.MaxInt64), false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var root, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			root, file = "sys/fs/cgroup", "memory.max"
		case hasController(parts[1], "memory"):
			root, file = "sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		// Walk up to the root: a limit may sit on an ancestor, and inside a
		// container without a cgroup namespace the process's path does not
		// exist below the mount, whose root is its own cgroup.
		for dir := path.Clean("/" + parts[2]); ; dir = path.Dir(dir) {
			if v, ok := readLimit(fsys, path.Join(root, dir, file)); ok && v < limit {
				limit, found = v, true
			}
			if dir == "/" {
				break
			}
		}
	}
	return limit, found
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readLimit parses a memory.max or memory.limit_in_bytes file. "max"
// (v2) and v1's near-MaxInt64 "unlimited" are no limit.
func readLimit(fsys fs.FS, name string) (int64, bool) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 || v >= 1<<60 {
		return 0, false
	}
	return v, true
}
