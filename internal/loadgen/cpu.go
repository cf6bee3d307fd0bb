package loadgen

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPUFunc returns the CPU time (user + system, all threads) a process has
// used so far. Run samples it around a timed phase to get the CPU cost of
// one enrollment, which, unlike throughput, barely moves when other
// processes compete for the cores.
type CPUFunc func() (time.Duration, error)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// ProcessCPU reads the CPU time of process pid from /proc/<pid>/stat
// (Linux; elsewhere every call fails). Its resolution is 10 ms, fine over
// a timed phase of a few seconds.
func ProcessCPU(pid int) CPUFunc {
	return func() (time.Duration, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		return parseStatCPU(string(b))
	}
}

// parseStatCPU returns utime + stime of a /proc/<pid>/stat line. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted after its last ')'.
func parseStatCPU(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("loadgen: malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("loadgen: short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil || utime < 0 || stime < 0 {
		return 0, fmt.Errorf("loadgen: /proc stat: times %q %q: %v", f[11], f[12], err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}
