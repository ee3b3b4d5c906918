package shardkv

import "syscall"

// threadSwitches returns the calling thread's voluntary and involuntary
// context switches so far (getrusage RUSAGE_THREAD), for the fill probe: a
// Set during which the count moved was descheduled by the kernel (invol)
// or blocked in it (vol), whatever the store did.
func threadSwitches() (vol, invol int64, ok bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru) != nil {
		return 0, 0, false
	}
	return int64(ru.Nvcsw), int64(ru.Nivcsw), true
}
