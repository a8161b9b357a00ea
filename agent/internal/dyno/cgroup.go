package dyno

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// unlimitedV1 is the smallest cgroup v1 limit taken as "no limit": the
// kernel reports an unlimited memory.limit_in_bytes as a page-rounded
// MaxInt64 (9223372036854771712).
const unlimitedV1 = 1 << 62

// cgroupStats is what the cgroup files say; ok flags are false when a file
// is missing or unreadable (the metric is then omitted).
type cgroupStats struct {
	memUsage, memLimit float64
	memUsageOK         bool
	memLimitOK         bool
	cpuSeconds         float64
	cpuOK              bool
}

// readCgroup reads memory and CPU accounting. It finds the agent's own
// cgroup from procRoot/self/cgroup and looks there first, then at the root
// of the hierarchy (what a container with a cgroup namespace sees). cgroup
// v2 is recognised by cgroup.controllers at cgroupRoot; else v1's memory/
// and cpuacct/ controllers are read.
func readCgroup(cgroupRoot, procRoot string) cgroupStats {
	var s cgroupStats
	v2Path, v1Paths := selfCgroup(procRoot)
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		for _, dir := range candidates(cgroupRoot, v2Path) {
			if !s.memUsageOK {
				if cur, ok := readUint(filepath.Join(dir, "memory.current")); ok {
					s.memUsage, s.memUsageOK = workingSet(cur, filepath.Join(dir, "memory.stat"), "inactive_file"), true
					s.memLimit, s.memLimitOK = limitV2(cgroupRoot, dir)
				}
			}
			if !s.cpuOK {
				if usec, ok := readKey(filepath.Join(dir, "cpu.stat"), "usage_usec"); ok {
					s.cpuSeconds, s.cpuOK = float64(usec)/1e6, true
				}
			}
		}
		return s
	}
	for _, dir := range candidates(filepath.Join(cgroupRoot, "memory"), v1Paths["memory"]) {
		if cur, ok := readUint(filepath.Join(dir, "memory.usage_in_bytes")); ok {
			s.memUsage, s.memUsageOK = workingSet(cur, filepath.Join(dir, "memory.stat"), "total_inactive_file"), true
			lim, ok := readUint(filepath.Join(dir, "memory.limit_in_bytes"))
			if !ok || lim >= unlimitedV1 {
				// The effective limit may come from a parent cgroup.
				lim, ok = readKey(filepath.Join(dir, "memory.stat"), "hierarchical_memory_limit")
			}
			if ok && lim < unlimitedV1 {
				s.memLimit, s.memLimitOK = float64(lim), true
			}
			break
		}
	}
	cpuDirs := append(candidates(filepath.Join(cgroupRoot, "cpuacct"), v1Paths["cpuacct"]),
		candidates(filepath.Join(cgroupRoot, "cpu,cpuacct"), v1Paths["cpuacct"])...)
	for _, dir := range cpuDirs {
		if ns, ok := readUint(filepath.Join(dir, "cpuacct.usage")); ok {
			s.cpuSeconds, s.cpuOK = float64(ns)/1e9, true
			break
		}
	}
	return s
}

// limitV2 is the lowest memory.max of dir and its ancestors up to root:
// a leaf cgroup often says "max" (no limit of its own) under a limited
// parent. "max" everywhere means unknown.
func limitV2(root, dir string) (float64, bool) {
	best, ok := uint64(0), false
	for {
		if lim, found := readUint(filepath.Join(dir, "memory.max")); found && (!ok || lim < best) {
			best, ok = lim, true
		}
		if rel, err := filepath.Rel(root, dir); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			break
		}
		dir = filepath.Dir(dir)
	}
	return float64(best), ok
}

// candidates is the agent's own cgroup directory (when known and not the
// root), then the hierarchy's root.
func candidates(root, self string) []string {
	if self == "" || self == "/" {
		return []string{root}
	}
	return []string{filepath.Join(root, self), root}
}

// selfCgroup parses procRoot/self/cgroup: the v2 path ("0::/path") and the
// v1 path per controller ("4:memory:/path", "3:cpu,cpuacct:/path").
func selfCgroup(procRoot string) (v2 string, v1 map[string]string) {
	v1 = map[string]string{}
	b, err := os.ReadFile(filepath.Join(procRoot, "self/cgroup"))
	if err != nil {
		return "", v1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			v1[c] = parts[2]
		}
	}
	return v2, v1
}

// workingSet is usage minus inactive file cache (what the kernel can drop
// without pressure), as cAdvisor and `kubectl top` report: page cache would
// otherwise make a dyno look full.
func workingSet(usage uint64, statFile, key string) float64 {
	if inactive, ok := readKey(statFile, key); ok && inactive <= usage {
		return float64(usage - inactive)
	}
	return float64(usage)
}

func readUint(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

// readKey reads "key value" lines (memory.stat, cpu.stat) and returns key's value.
func readKey(path, key string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
