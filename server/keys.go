package server

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/shardkv/shardkv"
)

// DEL and UNLINK delete each key on its own (atomic per key). A key the
// store's validator refuses cannot exist and counts as not deleted.
func cmdDel(c *client, args [][]byte) {
	st := c.s.store
	var n int64
	for i, k := range args[1:] {
		c.rd.hintArgs(args[1:], i, 1)
		existed, err := st.Delete(string(k))
		if err != nil && !errors.Is(err, shardkv.ErrInvalidKey) {
			c.storeError(err)
			return
		}
		if existed {
			n++
		}
	}
	c.writeInt(n)
}

// EXISTS counts the arguments that name a present key, duplicates
// included.
func cmdExists(c *client, args [][]byte) {
	st := c.s.store
	var n int64
	for i, k := range args[1:] {
		c.rd.hintArgs(args[1:], i, 1)
		if st.Exists(string(k)) {
			n++
		}
	}
	c.writeInt(n)
}

func cmdType(c *client, args [][]byte) {
	if c.s.store.Exists(string(args[1])) {
		c.writeSimple("string")
	} else {
		c.writeSimple("none")
	}
}

func cmdRename(c *client, args [][]byte)   { c.rename(args, false) }
func cmdRenameNX(c *client, args [][]byte) { c.rename(args, true) }

// rename is one Store.Rename (both keys' locks held). A key renamed to
// itself is OK (RENAMENX: 0) if it exists, as in Redis.
func (c *client) rename(args [][]byte, nx bool) {
	done, err := c.s.store.Rename(string(args[1]), string(args[2]), nx)
	switch {
	case err != nil:
		c.storeError(err)
	case nx:
		c.writeBool(done)
	default:
		c.writeOK()
	}
}

// EXPIRE options, as Redis 7's.
const (
	expNX = 1 << iota
	expXX
	expGT
	expLT
)

func cmdExpire(c *client, args [][]byte)    { c.expire(args, 1000, false, "expire") }
func cmdPExpire(c *client, args [][]byte)   { c.expire(args, 1, false, "pexpire") }
func cmdExpireAt(c *client, args [][]byte)  { c.expire(args, 1000, true, "expireat") }
func cmdPExpireAt(c *client, args [][]byte) { c.expire(args, 1, true, "pexpireat") }

// expire is EXPIRE and its kin, with Redis 7's rules: a time that is not
// in the future deletes the key (event "del"); NX/XX/GT/LT compare with
// the current deadline, a key without one counting as infinite. Without
// options it is one Store.Expire; with them one Update, so that the test
// and the change are atomic.
func (c *client) expire(args [][]byte, unit int64, abs bool, name string) {
	var flags int
	for _, o := range args[3:] {
		switch {
		case equalFold(o, "nx"):
			flags |= expNX
		case equalFold(o, "xx"):
			flags |= expXX
		case equalFold(o, "gt"):
			flags |= expGT
		case equalFold(o, "lt"):
			flags |= expLT
		default:
			c.writeError("ERR Unsupported option " + string(o))
			return
		}
	}
	if flags&expNX != 0 && flags&(expXX|expGT|expLT) != 0 {
		c.writeError("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if flags&expGT != 0 && flags&expLT != 0 {
		c.writeError("ERR GT and LT options at the same time are not compatible")
		return
	}
	when, ok := c.intArg(args[2])
	if !ok {
		return
	}
	when, ttl, ok := expireDeadline(when, unit, abs, time.Now())
	if !ok {
		c.errExpireTime(name)
		return
	}
	key := string(args[1])
	if flags == 0 {
		ok, err := c.s.store.Expire(key, ttl)
		if err != nil {
			c.storeError(err)
			return
		}
		c.writeBool(ok)
		return
	}
	var changed bool
	err := c.s.store.Update(key, func(e shardkv.Entry) shardkv.Change {
		changed = false
		if !e.Found {
			return shardkv.Change{Action: shardkv.Keep}
		}
		hasTTL := e.TTL != shardkv.NoTTL
		var cur int64 // the current deadline, in unix milliseconds
		if hasTTL {
			cur = time.Now().Add(e.TTL).UnixMilli()
		}
		switch {
		case flags&expNX != 0 && hasTTL,
			flags&expXX != 0 && !hasTTL,
			flags&expGT != 0 && (!hasTTL || when <= cur),
			flags&expLT != 0 && hasTTL && when >= cur:
			return shardkv.Change{Action: shardkv.Keep}
		}
		changed = true
		if ttl <= 0 {
			return shardkv.Change{Action: shardkv.Drop}
		}
		return shardkv.Change{Action: shardkv.Put, Value: e.Value, TTL: ttl, Op: "expire"}
	})
	if err != nil {
		c.storeError(err)
		return
	}
	c.writeBool(changed)
}

// expireDeadline turns EXPIRE's argument v (in unit milliseconds; a unix
// time if abs) into the deadline in unix milliseconds and the time to
// live from now (0 when the deadline is not in the future), with Redis'
// overflow checks (ok false: "invalid expire time"). An absolute time is
// measured from now at the clock's full precision, so that the deadline
// is the very millisecond given (PEXPIRETIME reads it back), and
// saturates, so that one far in the past cannot wrap into the future.
func expireDeadline(v, unit int64, abs bool, now time.Time) (when int64, ttl time.Duration, ok bool) {
	if unit == 1000 {
		if v > math.MaxInt64/1000 || v < math.MinInt64/1000 {
			return 0, 0, false
		}
		v *= 1000
	}
	if abs {
		return v, max(untilMillis(v, now), 0), true
	}
	nowMs := now.UnixMilli()
	if v > math.MaxInt64-nowMs {
		return 0, 0, false
	}
	return v + nowMs, max(msDuration(v), 0), true
}

func cmdPersist(c *client, args [][]byte) {
	ok, err := c.s.store.Persist(string(args[1]))
	if err != nil {
		c.storeError(err)
		return
	}
	c.writeBool(ok)
}

func cmdTTL(c *client, args [][]byte)         { c.ttl(args, false, false) }
func cmdPTTL(c *client, args [][]byte)        { c.ttl(args, true, false) }
func cmdExpireTime(c *client, args [][]byte)  { c.ttl(args, false, true) }
func cmdPExpireTime(c *client, args [][]byte) { c.ttl(args, true, true) }

// ttl answers TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for a missing key,
// -1 for one without a deadline; seconds are rounded as Redis rounds them.
func (c *client) ttl(args [][]byte, ms, abs bool) {
	d, found, err := c.s.store.TTL(string(args[1]))
	switch {
	case err != nil:
		c.storeError(err)
		return
	case !found:
		c.writeInt(-2)
		return
	case d == shardkv.NoTTL:
		c.writeInt(-1)
		return
	}
	v := d.Milliseconds()
	if abs {
		v = time.Now().Add(d).UnixMilli()
	}
	v = max(v, 0)
	if !ms {
		v = (v + 500) / 1000
	}
	c.writeInt(v)
}

// matchAll reports a pattern that matches every key: Redis special-cases
// "*" (its matcher would not match the empty key with it).
func matchAll(pattern []byte) bool { return len(pattern) == 1 && pattern[0] == '*' }

func cmdKeys(c *client, args [][]byte) {
	pattern := string(args[1])
	all := matchAll(args[1])
	keys := c.keys[:0]
	for k := range c.s.store.Keys("") {
		if all || globMatch(pattern, k, false) {
			keys = append(keys, k)
		}
	}
	c.writeArray(len(keys))
	for _, k := range keys {
		c.writeBulkString(k)
	}
	c.releaseKeys(keys)
}

func (c *client) releaseKeys(keys []string) {
	clear(keys)
	if cap(keys) > 4096 {
		keys = nil
	}
	c.keys = keys[:0]
}

// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: one Store.Scan
// step. The cursor is the store's, in decimal.
func cmdScan(c *client, args [][]byte) {
	cursor, ok := parseCursor(args[1])
	if !ok {
		c.writeError("ERR invalid cursor")
		return
	}
	count := int64(10)
	var pattern []byte
	var typ []byte
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.errSyntax()
			return
		}
		o, v := args[i], args[i+1]
		switch {
		case equalFold(o, "count"):
			n, ok := c.intArg(v)
			if !ok {
				return
			}
			if n < 1 {
				c.errSyntax()
				return
			}
			count = n
		case equalFold(o, "match"):
			pattern = v
		case equalFold(o, "type"):
			typ = v
		default:
			c.errSyntax()
			return
		}
	}
	if c.s.cluster {
		c.clusterScan(pattern, typ)
		return
	}
	keys, next, err := c.s.store.Scan(cursor, int(min(count, math.MaxInt32)), c.keys[:0])
	if err != nil {
		c.storeError(err)
		return
	}
	out := keys[:0]
	if typ == nil || equalFold(typ, "string") {
		usePattern := pattern != nil && !matchAll(pattern)
		p := string(pattern)
		for _, k := range keys {
			if !usePattern || globMatch(p, k, false) {
				out = append(out, k)
			}
		}
	}
	c.writeArray(2)
	c.writeBulk(strconv.AppendUint(c.num[:0], next, 10))
	c.writeArray(len(out))
	for _, k := range out {
		c.writeBulkString(k)
	}
	c.releaseKeys(keys)
}

// parseCursor parses a SCAN cursor as Redis' parseScanCursorOrReply
// (strtoul in base 10): an optional sign ("-1" is 2^64-1), digits, no
// leading space, nothing after them, within 64 bits; "" is 0.
func parseCursor(b []byte) (uint64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
		if len(b) == 0 {
			return 0, false // no digits: strtoul stops at the sign
		}
	}
	var v uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		d := uint64(ch - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false // ERANGE
		}
		v = v*10 + d
	}
	if neg {
		v = -v
	}
	return v, true
}

// RANDOMKEY scans from a random cursor, wrapping around once, and picks
// one key of the first non-empty step. The store's cursors cover
// [0, end) for an end that is a power of two it does not export, so the
// random start is found by shifting a random number right until a scan
// from it is inside that range.
func cmdRandomKey(c *client, args [][]byte) {
	st := c.s.store
	if st.Len() == 0 {
		c.writeNull()
		return
	}
	pick := func(keys []string) {
		c.writeBulkString(keys[rand.IntN(len(keys))])
		c.releaseKeys(keys)
	}
	r := rand.Uint64()
	var cursor uint64
	for k := 0; k < 64; k++ {
		keys, next, err := st.Scan(r>>k, 1, c.keys[:0])
		if err != nil {
			c.storeError(err)
			return
		}
		if len(keys) > 0 {
			pick(keys)
			return
		}
		if next != 0 {
			cursor = next
			break
		}
	}
	wrapped := cursor == 0
	for {
		keys, next, err := st.Scan(cursor, 1, c.keys[:0])
		if err != nil {
			c.storeError(err)
			return
		}
		if len(keys) > 0 {
			pick(keys)
			return
		}
		if next == 0 {
			if wrapped {
				c.writeNull()
				return
			}
			wrapped = true
		}
		cursor = next
	}
}

func cmdDBSize(c *client, args [][]byte) { c.writeInt(int64(c.s.store.Len())) }

// FLUSHDB and FLUSHALL [ASYNC|SYNC] clear the store (Store.Clear: no
// events, not a snapshot).
func cmdFlush(c *client, args [][]byte) {
	if len(args) > 2 || (len(args) == 2 && !equalFold(args[1], "async") && !equalFold(args[1], "sync")) {
		c.errSyntax()
		return
	}
	if c.s.cluster {
		c.clusterFlush()
		return
	}
	c.s.store.Clear()
	c.writeOK()
}
