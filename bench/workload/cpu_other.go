//go:build !unix

package workload

import "time"

// processCPU needs getrusage: 0 here.
func processCPU() time.Duration { return 0 }

// ProcessCPUSupported reports whether processCPU measures anything here.
const ProcessCPUSupported = false
