package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/shardkv/shardkv"
)

// notify-keyspace-events flags, with Redis' values.
const (
	nKeyspace = 1 << 0  // K
	nKeyevent = 1 << 1  // E
	nGeneric  = 1 << 2  // g
	nString   = 1 << 3  // $
	nList     = 1 << 4  // l
	nSet      = 1 << 5  // s
	nHash     = 1 << 6  // h
	nZSet     = 1 << 7  // z
	nExpired  = 1 << 8  // x
	nEvicted  = 1 << 9  // e
	nStream   = 1 << 10 // t
	nKeyMiss  = 1 << 11 // m
	nModule   = 1 << 13 // d
	nNew      = 1 << 14 // n
	nAll      = nGeneric | nString | nList | nSet | nHash | nZSet | nExpired | nEvicted | nStream | nModule

	// the classes this server fires
	nFired = nGeneric | nString | nExpired | nNew
)

// parseNotifyFlags parses a notify-keyspace-events string as Redis'
// keyspaceEventsStringToFlags (case-sensitive; 'A' is "g$lshzxetd").
func parseNotifyFlags(s string) (uint32, bool) {
	var f uint32
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 'A':
			f |= nAll
		case 'g':
			f |= nGeneric
		case '$':
			f |= nString
		case 'l':
			f |= nList
		case 's':
			f |= nSet
		case 'h':
			f |= nHash
		case 'z':
			f |= nZSet
		case 'x':
			f |= nExpired
		case 'e':
			f |= nEvicted
		case 'K':
			f |= nKeyspace
		case 'E':
			f |= nKeyevent
		case 't':
			f |= nStream
		case 'm':
			f |= nKeyMiss
		case 'd':
			f |= nModule
		case 'n':
			f |= nNew
		default:
			return 0, false
		}
	}
	return f, true
}

// formatNotifyFlags is Redis' keyspaceEventsFlagsToString: the canonical
// form CONFIG GET shows. As in Redis 7, 'n' is not shown next to 'A'
// ("AKn" reads back as "AK", though new-key events stay on).
func formatNotifyFlags(f uint32) string {
	var b []byte
	if f&nAll == nAll {
		b = append(b, 'A')
	} else {
		for _, x := range []struct {
			bit uint32
			ch  byte
		}{{nGeneric, 'g'}, {nString, '$'}, {nList, 'l'}, {nSet, 's'}, {nHash, 'h'}, {nZSet, 'z'},
			{nExpired, 'x'}, {nEvicted, 'e'}, {nStream, 't'}, {nModule, 'd'}, {nNew, 'n'}} {
			if f&x.bit != 0 {
				b = append(b, x.ch)
			}
		}
	}
	if f&nKeyspace != 0 {
		b = append(b, 'K')
	}
	if f&nKeyevent != 0 {
		b = append(b, 'E')
	}
	if f&nKeyMiss != 0 {
		b = append(b, 'm')
	}
	return string(b)
}

// watchable reports whether flags make any notification fire here.
func watchable(f uint32) bool { return f&(nKeyspace|nKeyevent) != 0 && f&nFired != 0 }

// eventClass is the notify class of a Redis event name.
func eventClass(op string, kind shardkv.EventKind) uint32 {
	switch op {
	case "expired":
		return nExpired
	case "evicted":
		return nEvicted
	case "del", "expire", "persist", "rename_from", "rename_to", "copy_to", "move_from", "move_to", "restore":
		return nGeneric
	case "set", "setrange", "incrby", "incrbyfloat", "append":
		return nString
	}
	switch kind {
	case shardkv.EventDelete:
		return nGeneric
	case shardkv.EventExpire:
		return nExpired
	}
	return nString
}

func defaultOp(kind shardkv.EventKind) string {
	switch kind {
	case shardkv.EventDelete:
		return "del"
	case shardkv.EventExpire:
		return "expired"
	}
	return "set"
}

// notifier turns the store's watch into keyspace notifications. It holds
// a store subscription only while the flags make some notification fire
// and the server serves: an open subscription makes every write of the
// store copy its event.
type notifier struct {
	s     *Server
	flags atomic.Uint32

	mu     sync.Mutex // serialises starting and stopping the watch
	cancel context.CancelFunc
	done   chan struct{}
}

// set installs new flags and starts or stops the watch to match.
func (n *notifier) set(f uint32) {
	n.flags.Store(f)
	n.sync()
}

// sync starts the watch goroutine if it should run and does not, and
// stops it (waiting for it) if it runs and should not.
func (n *notifier) sync() {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.s
	s.mu.Lock()
	serving := s.serving
	s.mu.Unlock()
	want := serving && !s.shutdown.Load() && watchable(n.flags.Load())
	switch {
	case want && n.cancel == nil:
		sub := s.store.Subscribe()
		ctx, cancel := context.WithCancel(context.Background())
		n.cancel, n.done = cancel, make(chan struct{})
		go n.run(ctx, sub, n.done)
	case !want && n.cancel != nil:
		n.cancel()
		<-n.done
		n.cancel, n.done = nil, nil
	}
}

// run is the watch loop: one goroutine, which only queues frames (hub
// publish never blocks), so it keeps up with the store's writers unless
// the machine is saturated; then the store reports a lag, which is
// logged and counted.
func (n *notifier) run(ctx context.Context, sub *shardkv.Subscription, done chan struct{}) {
	defer close(done)
	defer sub.Close()
	s := n.s
	for {
		ev, err := sub.Recv(ctx)
		if err != nil {
			var lag *shardkv.LaggedError
			switch {
			case errors.As(err, &lag):
				s.notifyLost.Add(lag.Missed)
				s.log.Warn("server: keyspace notifications lost: the watch lagged", "missed", lag.Missed)
				continue
			case ctx.Err() != nil:
				return
			case errors.Is(err, shardkv.ErrClosed):
				s.log.Warn("server: store closed; keyspace notifications stop")
				return
			default:
				s.notifyErrors.Add(1)
				s.log.Error("server: keyspace watch failed; notifications stop", "err", err)
				return
			}
		}
		n.dispatch(ev)
	}
}

func (n *notifier) dispatch(ev shardkv.Event) {
	h := &n.s.hub
	if h.n.Load() == 0 {
		return
	}
	f := n.flags.Load()
	op := ev.Op
	if op == "" {
		op = defaultOp(ev.Kind)
	}
	if ev.New && f&nNew != 0 {
		n.fire(f, "new", ev.Key)
	}
	if f&eventClass(op, ev.Kind) != 0 {
		n.fire(f, op, ev.Key)
	}
}

func (n *notifier) fire(f uint32, event, key string) {
	if f&nKeyspace != 0 {
		n.s.hub.publish(n.s, "__keyspace@0__:"+key, event)
	}
	if f&nKeyevent != 0 {
		n.s.hub.publish(n.s, "__keyevent@0__:"+event, key)
	}
}
