//go:build !unix

package loadgen

import (
	"errors"
	"time"
)

// SelfCPU is not implemented here: results then lack the client's CPU.
func SelfCPU() (time.Duration, error) {
	return 0, errors.New("loadgen: process CPU time needs a unix system")
}
