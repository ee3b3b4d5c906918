package stores

// Noop returns the spec of the floor row: a store that holds nothing. Get
// always misses, Set takes the write and keeps nothing, Len is 0. It is not
// in [All] and [Lookup] does not know it (it would fail every workload's
// checks); kvbench adds it to its latency and scale sections, so that each
// store's figures can be read against what the harness itself costs on
// that machine at that moment: the clock reads, the interface call, the
// load generator's allocations and the GC cycles they cause, and any time
// the operating system takes the processor away.
func Noop() Spec {
	return Spec{
		Name:  NoopName,
		Group: NoopName,
		Note:  "the floor: holds nothing (Get misses, Set keeps nothing); what the harness and the machine cost alone",
		New:   func(Config) (Store, error) { return &noopStore{named: named{NoopName, 0}}, nil },
	}
}

// NoopName is the floor row's name.
const NoopName = "noop"

type noopStore struct {
	named
	unsupported
}

// Get and Set are methods on a pointer, called through the Store
// interface, so that each costs an indirect call as a real store's does.
func (*noopStore) Get(string) ([]byte, bool) { return nil, false }
func (*noopStore) Set(string, []byte) bool   { return true }
func (*noopStore) Len() int                  { return 0 }
func (*noopStore) Close()                    {}
