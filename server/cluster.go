package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/shardkv/shardkv"
)

// Cluster mode. A store built with shardkv.WithBackend keeps its data in
// the backend (etcd, with the etcdkv module), reached only through the
// store's Context methods: Get, Set, SetWithTTL, Delete, Exists, ListKeys,
// Increment and CompareAndSwap. A server of such a store answers the
// commands that map onto those calls, each as atomic as the call it makes,
// and every other key command with errClusterUnsupported. Connection,
// server and pub/sub commands work as in local mode; keyspace notifications
// come from the store's watch, which a WatchBackend feeds with every
// node's writes, so two servers on one cluster see each other's events.
//
// How each command maps (doc.go has the table for users):
//
//   - GET, MGET, STRLEN, GETRANGE, EXISTS, TYPE: Get or Exists per key.
//   - SET (plain, EX/PX/EXAT/PXAT): Set or SetWithTTL; SETEX, PSETEX:
//     SetWithTTL; MSET: Set per key (atomic per key).
//   - SET NX and SETNX: one CompareAndSwap from absent.
//   - SET XX, SET GET and GETSET: a CompareAndSwap loop (read the value,
//     swap it if it is still the one read, else read again), so the read
//     and the write are one atomic step. Like Redis' GETSET and plain SET
//     they drop the key's TTL.
//   - INCR, DECR, INCRBY, DECRBY: one Increment, which keeps the key's TTL.
//     At the int64 bounds it saturates, where Redis answers the overflow
//     error; a value that is not an integer answers Redis' error.
//   - CAS: one CompareAndSwap. DEL, UNLINK: Delete per key.
//   - KEYS, SCAN, DBSIZE, RANDOMKEY: one ListKeys (of the pattern's literal
//     prefix). SCAN returns every matching key in its first reply, with
//     cursor 0, so a key present for the whole scan is returned (once).
//     Each costs a read of the whole key list from the backend.
//   - FLUSHDB, FLUSHALL: ListKeys, then Delete of each key: not atomic; a
//     key written meanwhile may survive.
//
// Not supported, because the Backend interface has no call that does them
// atomically or at all (no TTL read, no conditional delete, no rename, and
// a CompareAndSwap drops the TTL the command must keep): APPEND, SETRANGE,
// INCRBYFLOAT, GETDEL, GETEX with options, MSETNX, SET with KEEPTTL or with
// NX or XX or GET and an expire time, RENAME, RENAMENX, EXPIRE, PEXPIRE,
// EXPIREAT, PEXPIREAT, PERSIST, TTL, PTTL, EXPIRETIME, PEXPIRETIME.

// DefaultClusterTimeout is how long one backend call of a command may take
// in cluster mode when Config.ClusterTimeout is 0.
const DefaultClusterTimeout = 5 * time.Second

// casRetries bounds the CompareAndSwap loops of SET XX/GET and GETSET: a
// key that changes between every read and swap that many times is
// answered with errKeyBusy rather than looping until the timeout.
const casRetries = 100

// errKeyBusy is swap's error when casRetries swaps all lost to other
// writers; storeError answers it "ERR " + its text.
var errKeyBusy = errors.New("the key kept changing under the command (cluster mode): try again")

func errClusterUnsupported(name string) string {
	return "ERR '" + name + "' is not supported in cluster mode"
}

// clusterCommands is the command table of cluster mode, by name: a copy of
// every entry of commands, with the key commands' fn replaced by their
// cluster form or by the unsupported answer. It is built once, at init,
// after commands.
var clusterCommands map[string]*command

func buildClusterTable() {
	// The commands whose cluster form differs, by name. A nil fn marks a
	// command whose own fn branches on Server.cluster once its arguments
	// are parsed (SET, SETEX, MSET, GETRANGE, the INCR family, SCAN,
	// FLUSHDB), so that parsing is written once. Every other key command
	// answers that cluster mode does not support it.
	fns := map[string]func(*client, [][]byte){
		"get":       clusterGet,
		"mget":      clusterMGet,
		"strlen":    clusterStrlen,
		"getrange":  nil,
		"substr":    nil,
		"getex":     clusterGetEx,
		"set":       nil,
		"setnx":     clusterSetNX,
		"setex":     nil,
		"psetex":    nil,
		"getset":    clusterGetSet,
		"mset":      nil,
		"incr":      nil,
		"decr":      nil,
		"incrby":    nil,
		"decrby":    nil,
		"cas":       clusterCAS,
		"del":       clusterDel,
		"unlink":    clusterDel,
		"exists":    clusterExists,
		"type":      clusterType,
		"keys":      clusterKeys,
		"scan":      nil,
		"randomkey": clusterRandomKey,
		"dbsize":    clusterDBSize,
		"flushdb":   nil,
		"flushall":  nil,
	}
	clusterCommands = make(map[string]*command, len(commands))
	for name, cmd := range commands {
		cc := *cmd
		if fn, ok := fns[name]; ok {
			if fn != nil {
				cc.fn = fn
			}
		} else if cmd.flags&(flagWrite|flagReadOnly) != 0 {
			cc.fn = func(c *client, _ [][]byte) { c.writeError(errClusterUnsupported(name)) }
		}
		clusterCommands[name] = &cc
	}
}

// bctx is the context of one backend call.
func (c *client) bctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.s.clusterTimeout)
}

// backendError answers err as storeError does, but for an Increment of a
// value that is not an integer, which gets Redis' error.
func (c *client) backendError(err error) {
	var se *shardkv.StorageError
	if errors.As(err, &se) && strings.HasPrefix(se.Msg, "invalid number") {
		c.writeError(errNotInt)
		return
	}
	c.storeError(err)
}

// get reads key from the backend. A present empty value is a non-nil empty
// slice, so that it can be a CompareAndSwap's expected value.
func (c *client) get(key string) ([]byte, bool, error) {
	ctx, cancel := c.bctx()
	defer cancel()
	v, ok, err := c.s.store.GetContext(ctx, key)
	if ok && v == nil {
		v = []byte{}
	}
	return v, ok, err
}

// tooLarge answers, and reports, a value over the store's limit: checked
// here, before anything is sent, as the local store does.
func (c *client) tooLarge(v []byte) bool {
	if limit := c.s.store.MaxValueSize(); len(v) > limit {
		c.writeError(tooLargeMsg(limit))
		return true
	}
	return false
}

func clusterGet(c *client, args [][]byte) {
	v, ok, err := c.get(string(args[1]))
	switch {
	case err != nil:
		c.backendError(err)
	case !ok:
		c.writeNull()
	default:
		c.writeBulk(v)
	}
}

func clusterMGet(c *client, args [][]byte) {
	vals := make([][]byte, 0, len(args)-1)
	for _, k := range args[1:] {
		v, ok, err := c.get(string(k))
		switch {
		case errors.Is(err, shardkv.ErrInvalidKey):
			v = nil // a key the backend refuses cannot exist
		case err != nil:
			c.backendError(err)
			return
		case !ok:
			v = nil
		}
		vals = append(vals, v)
	}
	c.writeArray(len(vals))
	for _, v := range vals {
		if v == nil {
			c.writeNull()
		} else {
			c.writeBulk(v)
		}
	}
}

func clusterStrlen(c *client, args [][]byte) {
	v, _, err := c.get(string(args[1]))
	if err != nil {
		c.backendError(err)
		return
	}
	c.writeInt(int64(len(v)))
}

// clusterGetRange is GETRANGE's read, once cmdGetRange parsed the range.
func (c *client) clusterGetRange(key []byte, start, end int64) {
	v, _, err := c.get(string(key))
	if err != nil {
		c.backendError(err)
		return
	}
	c.writeBulk(substr(v, start, end))
}

// GETEX without options is GET; with them it changes the TTL, which the
// backend cannot do atomically.
func clusterGetEx(c *client, args [][]byte) {
	if len(args) > 2 {
		c.writeError(errClusterUnsupported("getex") + " with options")
		return
	}
	clusterGet(c, args)
}

// clusterSet is SET's write, once cmdSet parsed its options (flags) and
// time to live.
func (c *client) clusterSet(key string, val []byte, flags int, ttl time.Duration) {
	if c.tooLarge(val) {
		return
	}
	rest := flags &^ optExpire
	switch {
	case rest == 0:
		ctx, cancel := c.bctx()
		defer cancel()
		var err error
		if flags&optExpire != 0 {
			err = c.s.store.SetWithTTLContext(ctx, key, val, ttl) // ttl <= 0: nothing visible
		} else {
			err = c.s.store.SetContext(ctx, key, val)
		}
		if err != nil {
			c.backendError(err)
			return
		}
		c.writeOK()
	case flags&optExpire != 0 || rest&optKeepTTL != 0:
		c.writeError(errClusterUnsupported("set") + " with these options")
	case rest == optNX:
		swapped, ok := c.createIfAbsent(key, val)
		switch {
		case !ok: // answered
		case swapped:
			c.writeOK()
		default:
			c.writeNull()
		}
	default: // XX and/or GET (or NX with GET): a CompareAndSwap loop
		old, found, wrote, err := c.swap(key, func(_ []byte, found bool) bool {
			return !(rest&optNX != 0 && found) && !(rest&optXX != 0 && !found)
		}, val)
		switch {
		case err != nil:
			c.backendError(err)
		case rest&optGet != 0 && found:
			c.writeBulk(old)
		case rest&optGet != 0 || !wrote:
			c.writeNull()
		default:
			c.writeOK()
		}
	}
}

// swap stores val under key if want(current value, found) says so, as one
// atomic step: it reads the key and swaps only the value it read, reading
// again if the key changed in between. It returns what it read last and
// whether it wrote. A CompareAndSwap drops the key's TTL, as every command
// that uses swap does in Redis.
func (c *client) swap(key string, want func(old []byte, found bool) bool, val []byte) (old []byte, found, wrote bool, err error) {
	for range casRetries {
		old, found, err = c.get(key)
		if err != nil || !want(old, found) {
			return old, found, false, err
		}
		ctx, cancel := c.bctx()
		var expected []byte // nil: absent
		if found {
			expected = old
		}
		swapped, err := c.s.store.CompareAndSwapContext(ctx, key, expected, val)
		cancel()
		if err != nil || swapped {
			return old, found, swapped, err
		}
	}
	return nil, false, false, errKeyBusy
}

// createIfAbsent stores val under key if key is absent, with one
// CompareAndSwap; ok is false when it has answered an error.
func (c *client) createIfAbsent(key string, val []byte) (swapped, ok bool) {
	ctx, cancel := c.bctx()
	defer cancel()
	swapped, err := c.s.store.CompareAndSwapContext(ctx, key, nil, val)
	if err != nil {
		c.backendError(err)
		return false, false
	}
	return swapped, true
}

func clusterSetNX(c *client, args [][]byte) {
	if c.tooLarge(args[2]) {
		return
	}
	if swapped, ok := c.createIfAbsent(string(args[1]), args[2]); ok {
		c.writeBool(swapped)
	}
}

// clusterSetWithTTL is SETEX's and PSETEX's write, once setEx parsed the
// time to live.
func (c *client) clusterSetWithTTL(key, val []byte, ttl time.Duration) {
	if c.tooLarge(val) {
		return
	}
	ctx, cancel := c.bctx()
	defer cancel()
	if err := c.s.store.SetWithTTLContext(ctx, string(key), val, ttl); err != nil {
		c.backendError(err)
		return
	}
	c.writeOK()
}

func clusterGetSet(c *client, args [][]byte) {
	if c.tooLarge(args[2]) {
		return
	}
	old, found, _, err := c.swap(string(args[1]), func([]byte, bool) bool { return true }, args[2])
	c.replyOld(err, old, found)
}

// clusterMSet is MSET's writes, once cmdMSet checked its arguments: one
// Set per key.
func (c *client) clusterMSet(args [][]byte) {
	for i := 1; i < len(args); i += 2 {
		ctx, cancel := c.bctx()
		err := c.s.store.SetContext(ctx, string(args[i]), args[i+1])
		cancel()
		if err != nil {
			c.backendError(err)
			return
		}
	}
	c.writeOK()
}

// clusterIncrBy is incrBy in cluster mode: one Increment.
func (c *client) clusterIncrBy(key []byte, delta int64) {
	ctx, cancel := c.bctx()
	defer cancel()
	n, err := c.s.store.IncrementContext(ctx, string(key), delta)
	if err != nil {
		c.backendError(err)
		return
	}
	c.writeInt(n)
}

func clusterCAS(c *client, args [][]byte) {
	if c.tooLarge(args[3]) {
		return
	}
	ctx, cancel := c.bctx()
	defer cancel()
	swapped, err := c.s.store.CompareAndSwapContext(ctx, string(args[1]), args[2], args[3])
	if err != nil {
		c.backendError(err)
		return
	}
	c.writeBool(swapped)
}

func clusterDel(c *client, args [][]byte) {
	var n int64
	for _, k := range args[1:] {
		ctx, cancel := c.bctx()
		existed, err := c.s.store.DeleteContext(ctx, string(k))
		cancel()
		if err != nil && !errors.Is(err, shardkv.ErrInvalidKey) {
			c.backendError(err)
			return
		}
		if existed {
			n++
		}
	}
	c.writeInt(n)
}

func (c *client) exists(key string) (bool, error) {
	ctx, cancel := c.bctx()
	defer cancel()
	ok, err := c.s.store.ExistsContext(ctx, key)
	if errors.Is(err, shardkv.ErrInvalidKey) {
		return false, nil
	}
	return ok, err
}

func clusterExists(c *client, args [][]byte) {
	var n int64
	for _, k := range args[1:] {
		ok, err := c.exists(string(k))
		if err != nil {
			c.backendError(err)
			return
		}
		if ok {
			n++
		}
	}
	c.writeInt(n)
}

func clusterType(c *client, args [][]byte) {
	ok, err := c.exists(string(args[1]))
	switch {
	case err != nil:
		c.backendError(err)
	case ok:
		c.writeSimple("string")
	default:
		c.writeSimple("none")
	}
}

// listKeys returns the backend's keys that start with prefix, sorted.
func (c *client) listKeys(prefix string) ([]string, error) {
	ctx, cancel := c.bctx()
	defer cancel()
	return c.s.store.ListKeysContext(ctx, prefix)
}

// globPrefix is the literal start of a glob pattern: every key it matches
// starts with it.
func globPrefix(p string) string {
	if i := strings.IndexAny(p, `*?[\`); i >= 0 {
		return p[:i]
	}
	return p
}

// matching returns the keys that match the glob pattern, from one ListKeys.
func (c *client) matching(pattern []byte) ([]string, error) {
	if pattern == nil || matchAll(pattern) {
		return c.listKeys("")
	}
	p := string(pattern)
	keys, err := c.listKeys(globPrefix(p))
	if err != nil {
		return nil, err
	}
	out := keys[:0]
	for _, k := range keys {
		if globMatch(p, k, false) {
			out = append(out, k)
		}
	}
	return out, nil
}

func clusterKeys(c *client, args [][]byte) {
	keys, err := c.matching(args[1])
	if err != nil {
		c.backendError(err)
		return
	}
	c.writeBulkStrings(keys...)
}

// clusterScan is SCAN in cluster mode, once cmdScan parsed its
// arguments: every matching key at once, with cursor 0 (the scan is
// complete); whatever the cursor given, the scan starts over.
func (c *client) clusterScan(pattern, typ []byte) {
	var keys []string
	if typ == nil || equalFold(typ, "string") {
		var err error
		if keys, err = c.matching(pattern); err != nil {
			c.backendError(err)
			return
		}
	}
	c.writeArray(2)
	c.writeBulkString("0")
	c.writeBulkStrings(keys...)
}

func clusterRandomKey(c *client, args [][]byte) {
	keys, err := c.listKeys("")
	switch {
	case err != nil:
		c.backendError(err)
	case len(keys) == 0:
		c.writeNull()
	default:
		c.writeBulkString(keys[rand.IntN(len(keys))])
	}
}

func clusterDBSize(c *client, args [][]byte) {
	keys, err := c.listKeys("")
	if err != nil {
		c.backendError(err)
		return
	}
	c.writeInt(int64(len(keys)))
}

// clusterFlush is FLUSHDB and FLUSHALL in cluster mode, once cmdFlush
// checked the arguments: every key of the backend (its namespace, for
// etcdkv) deleted one at a time.
func (c *client) clusterFlush() {
	keys, err := c.listKeys("")
	if err != nil {
		c.backendError(err)
		return
	}
	for _, k := range keys {
		ctx, cancel := c.bctx()
		_, err := c.s.store.DeleteContext(ctx, k)
		cancel()
		if err != nil {
			c.backendError(err)
			return
		}
	}
	c.writeOK()
}

// clusterKeyCount is INFO keyspace's count in cluster mode: -1 if the
// backend could not be read.
func (s *Server) clusterKeyCount() int {
	ctx, cancel := context.WithTimeout(context.Background(), s.clusterTimeout)
	defer cancel()
	keys, err := s.store.ListKeysContext(ctx, "")
	if err != nil {
		return -1
	}
	return len(keys)
}
