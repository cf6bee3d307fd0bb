//go:build unix

package loadgen

import (
	"syscall"
	"time"
)

// SelfCPU is the CPU time of this process (getrusage), microsecond
// resolution.
func SelfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
