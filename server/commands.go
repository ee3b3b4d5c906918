package server

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/shardkv/shardkv"
)

// Reply texts shared by several commands (Redis 7's).
const (
	errSyntax      = "ERR syntax error"
	errNotInt      = "ERR value is not an integer or out of range"
	errOverflow    = "ERR increment or decrement would overflow"
	errNotFloat    = "ERR value is not a valid float"
	errNoSuchKey   = "ERR no such key"
	errDBIndex     = "ERR DB index is out of range"
	errNaNInf      = "ERR increment would produce NaN or Infinity"
	errQuota       = "OOM command not allowed when the store's key quota (maxkeys) is reached."
	errStoreClosed = "ERR store closed"
	errInternal    = "ERR internal error"
)

// Command flags: what COMMAND reports, and what dispatch checks.
const (
	flagWrite    = 1 << iota // modifies the store
	flagReadOnly             // reads the store
	flagFast
	flagNoAuth   // allowed before AUTH
	flagPubSubOK // allowed in subscribe mode
	flagPubSub   // a pub/sub command
	flagAdmin
	flagDenyOOM
	flagLoading
	flagStale
	flagNoScript
)

var flagNames = []string{"write", "readonly", "fast", "no_auth", "", "pubsub", "admin", "denyoom", "loading", "stale", "noscript"}

// command is one entry of the command table. arity is Redis': n > 0
// exactly n arguments (the name included), n < 0 at least -n.
type command struct {
	name                    string
	fn                      func(c *client, args [][]byte)
	arity                   int
	flags                   int
	firstKey, lastKey, step int
	acl                     string // ACL categories, space separated
}

func (cmd *command) arityOK(n int) bool {
	if cmd.arity > 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

// commands is the command table, keyed by lower-case name. It is built
// once at init and read-only afterwards.
var commands map[string]*command

func init() {
	list := []*command{
		// connection
		{name: "ping", fn: cmdPing, arity: -1, flags: flagFast | flagPubSubOK | flagStale, acl: "@fast @connection"},
		{name: "echo", fn: cmdEcho, arity: 2, flags: flagFast | flagStale, acl: "@fast @connection"},
		{name: "quit", fn: cmdQuit, arity: -1, flags: flagFast | flagNoAuth | flagPubSubOK | flagStale | flagLoading, acl: "@fast @connection"},
		{name: "reset", fn: cmdReset, arity: 1, flags: flagFast | flagNoAuth | flagPubSubOK | flagStale | flagLoading, acl: "@fast @connection"},
		{name: "select", fn: cmdSelect, arity: 2, flags: flagFast | flagStale | flagLoading, acl: "@fast @connection"},
		{name: "hello", fn: cmdHello, arity: -1, flags: flagFast | flagNoAuth | flagStale | flagLoading, acl: "@fast @connection"},
		{name: "auth", fn: cmdAuth, arity: -2, flags: flagFast | flagNoAuth | flagStale | flagLoading, acl: "@fast @connection"},
		{name: "client", fn: cmdClient, arity: -2, flags: flagStale | flagLoading, acl: "@slow @connection"},
		// server
		{name: "command", fn: cmdCommand, arity: -1, flags: flagStale | flagLoading, acl: "@slow @connection"},
		{name: "info", fn: cmdInfo, arity: -1, flags: flagStale | flagLoading, acl: "@slow @dangerous"},
		{name: "time", fn: cmdTime, arity: 1, flags: flagFast | flagStale | flagLoading, acl: "@fast"},
		{name: "dbsize", fn: cmdDBSize, arity: 1, flags: flagReadOnly | flagFast, acl: "@keyspace @read @fast"},
		{name: "flushdb", fn: cmdFlush, arity: -1, flags: flagWrite, acl: "@keyspace @write @slow @dangerous"},
		{name: "flushall", fn: cmdFlush, arity: -1, flags: flagWrite, acl: "@keyspace @write @slow @dangerous"},
		{name: "config", fn: cmdConfig, arity: -2, flags: flagAdmin | flagStale | flagLoading, acl: "@admin @slow @dangerous"},
		// strings
		{name: "get", fn: cmdGet, arity: 2, flags: flagReadOnly | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@read @string @fast"},
		{name: "set", fn: cmdSet, arity: -3, flags: flagWrite | flagDenyOOM, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @slow"},
		{name: "setnx", fn: cmdSetNX, arity: 3, flags: flagWrite | flagDenyOOM | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "setex", fn: cmdSetEX, arity: 4, flags: flagWrite | flagDenyOOM, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @slow"},
		{name: "psetex", fn: cmdPSetEX, arity: 4, flags: flagWrite | flagDenyOOM, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @slow"},
		{name: "getset", fn: cmdGetSet, arity: 3, flags: flagWrite | flagDenyOOM | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "getdel", fn: cmdGetDel, arity: 2, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "getex", fn: cmdGetEx, arity: -2, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "mget", fn: cmdMGet, arity: -2, flags: flagReadOnly | flagFast, firstKey: 1, lastKey: -1, step: 1, acl: "@read @string @fast"},
		{name: "mset", fn: cmdMSet, arity: -3, flags: flagWrite | flagDenyOOM, firstKey: 1, lastKey: -1, step: 2, acl: "@write @string @slow"},
		{name: "msetnx", fn: cmdMSetNX, arity: -3, flags: flagWrite | flagDenyOOM, firstKey: 1, lastKey: -1, step: 2, acl: "@write @string @slow"},
		{name: "strlen", fn: cmdStrlen, arity: 2, flags: flagReadOnly | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@read @string @fast"},
		{name: "append", fn: cmdAppend, arity: 3, flags: flagWrite | flagDenyOOM | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "getrange", fn: cmdGetRange, arity: 4, flags: flagReadOnly, firstKey: 1, lastKey: 1, step: 1, acl: "@read @string @slow"},
		{name: "substr", fn: cmdGetRange, arity: 4, flags: flagReadOnly, firstKey: 1, lastKey: 1, step: 1, acl: "@read @string @slow"},
		{name: "setrange", fn: cmdSetRange, arity: 4, flags: flagWrite | flagDenyOOM, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @slow"},
		{name: "incr", fn: cmdIncr, arity: 2, flags: flagWrite | flagDenyOOM | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "decr", fn: cmdDecr, arity: 2, flags: flagWrite | flagDenyOOM | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "incrby", fn: cmdIncrBy, arity: 3, flags: flagWrite | flagDenyOOM | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "decrby", fn: cmdDecrBy, arity: 3, flags: flagWrite | flagDenyOOM | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "incrbyfloat", fn: cmdIncrByFloat, arity: 3, flags: flagWrite | flagDenyOOM | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		{name: "cas", fn: cmdCAS, arity: 4, flags: flagWrite | flagDenyOOM | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@write @string @fast"},
		// keys
		{name: "del", fn: cmdDel, arity: -2, flags: flagWrite, firstKey: 1, lastKey: -1, step: 1, acl: "@keyspace @write @slow"},
		{name: "unlink", fn: cmdDel, arity: -2, flags: flagWrite | flagFast, firstKey: 1, lastKey: -1, step: 1, acl: "@keyspace @write @fast"},
		{name: "exists", fn: cmdExists, arity: -2, flags: flagReadOnly | flagFast, firstKey: 1, lastKey: -1, step: 1, acl: "@keyspace @read @fast"},
		{name: "type", fn: cmdType, arity: 2, flags: flagReadOnly | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @read @fast"},
		{name: "rename", fn: cmdRename, arity: 3, flags: flagWrite, firstKey: 1, lastKey: 2, step: 1, acl: "@keyspace @write @slow"},
		{name: "renamenx", fn: cmdRenameNX, arity: 3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 2, step: 1, acl: "@keyspace @write @fast"},
		{name: "expire", fn: cmdExpire, arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @write @fast"},
		{name: "pexpire", fn: cmdPExpire, arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @write @fast"},
		{name: "expireat", fn: cmdExpireAt, arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @write @fast"},
		{name: "pexpireat", fn: cmdPExpireAt, arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @write @fast"},
		{name: "ttl", fn: cmdTTL, arity: 2, flags: flagReadOnly | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @read @fast"},
		{name: "pttl", fn: cmdPTTL, arity: 2, flags: flagReadOnly | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @read @fast"},
		{name: "expiretime", fn: cmdExpireTime, arity: 2, flags: flagReadOnly | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @read @fast"},
		{name: "pexpiretime", fn: cmdPExpireTime, arity: 2, flags: flagReadOnly | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @read @fast"},
		{name: "persist", fn: cmdPersist, arity: 2, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1, acl: "@keyspace @write @fast"},
		{name: "keys", fn: cmdKeys, arity: 2, flags: flagReadOnly, acl: "@keyspace @read @slow @dangerous"},
		{name: "scan", fn: cmdScan, arity: -2, flags: flagReadOnly, acl: "@keyspace @read @slow"},
		{name: "randomkey", fn: cmdRandomKey, arity: 1, flags: flagReadOnly, acl: "@keyspace @read @slow"},
		// pub/sub
		{name: "subscribe", fn: cmdSubscribe, arity: -2, flags: flagPubSub | flagPubSubOK | flagStale | flagLoading, acl: "@pubsub @slow"},
		{name: "psubscribe", fn: cmdPSubscribe, arity: -2, flags: flagPubSub | flagPubSubOK | flagStale | flagLoading, acl: "@pubsub @slow"},
		{name: "unsubscribe", fn: cmdUnsubscribe, arity: -1, flags: flagPubSub | flagPubSubOK | flagStale | flagLoading, acl: "@pubsub @slow"},
		{name: "punsubscribe", fn: cmdPUnsubscribe, arity: -1, flags: flagPubSub | flagPubSubOK | flagStale | flagLoading, acl: "@pubsub @slow"},
		{name: "publish", fn: cmdPublish, arity: 3, flags: flagPubSub | flagFast | flagStale | flagLoading, acl: "@pubsub @fast"},
	}
	commands = make(map[string]*command, len(list))
	for _, cmd := range list {
		commands[cmd.name] = cmd
	}
	buildClusterTable()
}

// sortedCommands returns the table in name order (COMMAND's output).
func sortedCommands() []*command {
	out := make([]*command, 0, len(commands))
	for _, cmd := range commands {
		out = append(out, cmd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// storeError answers an error from the store. The texts:
//
//   - ErrInvalidKey: "ERR " + the store's error ("ERR invalid key format: ...")
//   - ErrValueTooLarge: "ERR string exceeds maximum allowed size (N bytes)"
//   - ErrQuotaExceeded: errQuota (an OOM error, as Redis' maxmemory refusal)
//   - ErrClosed: "ERR store closed"
//   - ErrNotFound: "ERR no such key"
//   - anything else (a *StorageError): "ERR " + its text
func (c *client) storeError(err error) {
	switch {
	case errors.Is(err, shardkv.ErrInvalidKey):
		c.writeError("ERR " + err.Error())
	case errors.Is(err, shardkv.ErrValueTooLarge):
		c.writeError(tooLargeMsg(c.s.store.MaxValueSize()))
	case errors.Is(err, shardkv.ErrQuotaExceeded):
		c.writeError(errQuota)
	case errors.Is(err, shardkv.ErrClosed):
		c.writeError(errStoreClosed)
	case errors.Is(err, shardkv.ErrNotFound):
		c.writeError(errNoSuchKey)
	default:
		c.writeError("ERR " + err.Error())
	}
}

func tooLargeMsg(limit int) string {
	return fmt.Sprintf("ERR string exceeds maximum allowed size (%d bytes)", limit)
}

// parseInt parses a signed decimal as Redis' string2ll does: no sign but
// '-', no leading zeros, no spaces, within int64.
func parseInt(b []byte) (int64, bool) {
	n := len(b)
	if n == 0 || n > 20 {
		return 0, false
	}
	if n == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	i := 0
	if b[0] == '-' {
		neg = true
		i = 1
		if n == 1 {
			return 0, false
		}
	}
	if b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	var v uint64
	for ; i < n; i++ {
		d := b[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		if v > (math.MaxUint64-9)/10 {
			return 0, false
		}
		v = v*10 + uint64(d-'0')
	}
	if neg {
		if v > uint64(math.MaxInt64)+1 {
			return 0, false
		}
		return int64(-v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// intArg parses an integer argument, answering Redis' error if it is not
// one.
func (c *client) intArg(b []byte) (int64, bool) {
	v, ok := parseInt(b)
	if !ok {
		c.writeError(errNotInt)
	}
	return v, ok
}

// equalFold reports whether b is s, ignoring ASCII case (s lower-case).
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

func (c *client) appendNum(v int64) []byte {
	c.num = strconv.AppendInt(c.num[:0], v, 10)
	return c.num
}
