package dyno

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of /proc/[pid]/stat times (USER_HZ, 100 on every Linux
// architecture Heroku and Docker run; reading it needs sysconf via cgo).
const userHZ = 100

// procStats is what /proc says about the visible processes.
type procStats struct {
	processes  int
	cpuSeconds float64 // utime+stime+cutime+cstime of every visible process
	startTime  float64 // unix seconds; 0 when unknown
}

// readProc scans procRoot: every numeric directory is a process (all of the
// dyno's in its own PID namespace). The start time is that of PID 1 (the
// dyno's or container's init), else of the oldest visible process.
func readProc(procRoot string) (procStats, bool) {
	var s procStats
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return s, false
	}
	btime, btimeOK := bootTime(procRoot)
	earliest := -1.0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		st, ok := readStat(filepath.Join(procRoot, e.Name(), "stat"))
		if !ok {
			continue // exited since ReadDir, or not ours to read
		}
		s.processes++
		s.cpuSeconds += st.cpuTicks / userHZ
		if earliest < 0 || st.startTicks < earliest {
			earliest = st.startTicks
		}
	}
	if btimeOK {
		if st, ok := readStat(filepath.Join(procRoot, "1", "stat")); ok {
			s.startTime = btime + st.startTicks/userHZ
		} else if earliest >= 0 {
			s.startTime = btime + earliest/userHZ
		}
	}
	return s, s.processes > 0
}

type pidStat struct {
	cpuTicks, startTicks float64
}

// readStat parses /proc/[pid]/stat. The command (field 2) is in parentheses
// and may hold spaces and parentheses, so fields are counted from the last ')'.
func readStat(path string) (pidStat, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return pidStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime..cstime are fields 14-17, starttime 22.
	if len(f) < 20 {
		return pidStat{}, false
	}
	var st pidStat
	for _, idx := range []int{11, 12, 13, 14} {
		n, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return pidStat{}, false
		}
		st.cpuTicks += float64(max(n, 0))
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return pidStat{}, false
	}
	st.startTicks = float64(start)
	return st, true
}

// bootTime is the btime line of /proc/stat: boot time in unix seconds.
func bootTime(procRoot string) (float64, bool) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return float64(n), err == nil
		}
	}
	return 0, false
}
