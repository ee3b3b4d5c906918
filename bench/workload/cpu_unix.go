//go:build unix

package workload

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used, every thread, user and
// system (getrusage RUSAGE_SELF); 0 where it cannot be read.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcessCPUSupported reports whether processCPU measures anything here.
const ProcessCPUSupported = true
