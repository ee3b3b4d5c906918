package server

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/shardkv/shardkv"
)

// SET / GETEX option flags, as Redis' parseExtendedStringArgumentsOrReply.
const (
	optNX = 1 << iota
	optXX
	optGet
	optKeepTTL
	optEX
	optPX
	optEXAT
	optPXAT
	optPersist

	optExpire = optEX | optPX | optEXAT | optPXAT
)

// parseSetOptions parses SET's (getex false) or GETEX's (getex true)
// options with Redis 7's rules: NX/XX exclude each other, the expire
// options and KEEPTTL/PERSIST exclude each other (an option repeated
// takes its last value), an expire option needs its argument; anything
// else is a syntax error.
func parseSetOptions(opts [][]byte, getex bool) (flags int, expire []byte, ok bool) {
	for i := 0; i < len(opts); i++ {
		o := opts[i]
		hasNext := i+1 < len(opts)
		switch {
		case equalFold(o, "nx") && flags&optXX == 0 && !getex:
			flags |= optNX
		case equalFold(o, "xx") && flags&optNX == 0 && !getex:
			flags |= optXX
		case equalFold(o, "get") && !getex:
			flags |= optGet
		case equalFold(o, "keepttl") && flags&(optPersist|optExpire) == 0 && !getex:
			flags |= optKeepTTL
		case equalFold(o, "persist") && getex && flags&(optKeepTTL|optExpire) == 0:
			flags |= optPersist
		case equalFold(o, "ex") && flags&(optKeepTTL|optPersist|optExpire&^optEX) == 0 && hasNext:
			flags |= optEX
			i++
			expire = opts[i]
		case equalFold(o, "px") && flags&(optKeepTTL|optPersist|optExpire&^optPX) == 0 && hasNext:
			flags |= optPX
			i++
			expire = opts[i]
		case equalFold(o, "exat") && flags&(optKeepTTL|optPersist|optExpire&^optEXAT) == 0 && hasNext:
			flags |= optEXAT
			i++
			expire = opts[i]
		case equalFold(o, "pxat") && flags&(optKeepTTL|optPersist|optExpire&^optPXAT) == 0 && hasNext:
			flags |= optPXAT
			i++
			expire = opts[i]
		default:
			return 0, nil, false
		}
	}
	return flags, expire, true
}

// msDuration converts milliseconds to a Duration, saturating.
func msDuration(ms int64) time.Duration {
	switch {
	case ms > math.MaxInt64/int64(time.Millisecond):
		return math.MaxInt64
	case ms < math.MinInt64/int64(time.Millisecond):
		return math.MinInt64
	}
	return time.Duration(ms) * time.Millisecond
}

// expireTTL turns an expire option's argument into a time to live from
// now (<= 0 for an absolute time already past), with Redis'
// getExpireMillisecondsOrReply checks; name is the command for the error.
func (c *client) expireTTL(flags int, arg []byte, name string) (time.Duration, bool) {
	ttl, msg := parseExpire(flags, arg, name, time.Now())
	if msg != "" {
		c.writeError(msg)
		return 0, false
	}
	return ttl, true
}

// parseExpire is expireTTL without the reply: the time to live, or the
// error to answer. An absolute time is measured from now at the clock's
// full precision (not from now in whole milliseconds), so that the key's
// deadline is the millisecond given and PEXPIRETIME reads it back.
func parseExpire(flags int, arg []byte, name string, now time.Time) (time.Duration, string) {
	v, ok := parseInt(arg)
	if !ok {
		return 0, errNotInt
	}
	seconds := flags&(optEX|optEXAT) != 0
	if v <= 0 || (seconds && v > math.MaxInt64/1000) {
		return 0, expireTimeMsg(name)
	}
	if seconds {
		v *= 1000
	}
	if flags&(optEX|optPX) != 0 {
		if v > math.MaxInt64-now.UnixMilli() {
			return 0, expireTimeMsg(name)
		}
		return msDuration(v), ""
	}
	return untilMillis(v, now), ""
}

// untilMillis is the time from now to the unix time ms (in milliseconds),
// saturating; it is <= 0 when ms is not after now.
func untilMillis(ms int64, now time.Time) time.Duration {
	return time.UnixMilli(ms).Sub(now)
}

func expireTimeMsg(name string) string {
	return "ERR invalid expire time in '" + name + "' command"
}

func (c *client) errExpireTime(name string) { c.writeError(expireTimeMsg(name)) }

func cmdGet(c *client, args [][]byte) {
	found, err := c.s.store.View(string(args[1]), c.bulkFn)
	switch {
	case err != nil:
		c.storeError(err)
	case !found:
		c.writeNull()
	}
}

func cmdSet(c *client, args [][]byte) {
	// key does not escape in local mode (the cluster branch converts its
	// own), so a plain SET of a key of up to 32 bytes allocates nothing
	// for it (a longer conversion is a heap copy).
	key, val := string(args[1]), args[2]
	flags, exp, ok := parseSetOptions(args[3:], false)
	if !ok {
		c.errSyntax()
		return
	}
	var ttl time.Duration
	if flags&optExpire != 0 {
		if ttl, ok = c.expireTTL(flags, exp, "set"); !ok {
			return
		}
	}
	if c.s.cluster {
		c.clusterSet(string(args[1]), val, flags, ttl)
		return
	}
	st := c.s.store
	switch flags &^ optExpire {
	case 0: // a plain write: one Set or SetWithTTL
		var err error
		if flags&optExpire != 0 {
			err = st.SetWithTTL(key, val, ttl) // ttl <= 0: stored already expired
		} else {
			err = st.Set(key, val)
		}
		if err != nil {
			c.storeError(err)
			return
		}
		c.writeOK()
		return
	case optNX:
		if flags&optExpire == 0 { // SET NX is a compare-and-swap from absent
			swapped, err := st.CompareAndSwap(key, nil, val)
			if err != nil {
				c.storeError(err)
			} else if swapped {
				c.writeOK()
			} else {
				c.writeNull()
			}
			return
		}
	}
	// The rest reads the key: one Update, so the check and the write are
	// one atomic step.
	var (
		old      []byte
		oldFound bool
		applied  bool
	)
	err := st.Update(key, func(e shardkv.Entry) shardkv.Change {
		oldFound, applied = e.Found, false
		if flags&optGet != 0 {
			old = append(old[:0], e.Value...)
		}
		if (flags&optNX != 0 && e.Found) || (flags&optXX != 0 && !e.Found) {
			return shardkv.Change{Action: shardkv.Keep}
		}
		applied = true
		if flags&optExpire != 0 && ttl <= 0 { // EXAT/PXAT in the past
			if e.Found {
				return shardkv.Change{Action: shardkv.Drop}
			}
			return shardkv.Change{Action: shardkv.Keep}
		}
		return shardkv.Change{Action: shardkv.Put, Value: val, TTL: ttl, KeepTTL: flags&optKeepTTL != 0}
	})
	switch {
	case err != nil:
		c.storeError(err)
	case flags&optGet != 0:
		if oldFound {
			c.writeBulk(old)
		} else {
			c.writeNull()
		}
	case applied:
		c.writeOK()
	default:
		c.writeNull()
	}
}

func cmdSetNX(c *client, args [][]byte) {
	swapped, err := c.s.store.CompareAndSwap(string(args[1]), nil, args[2])
	if err != nil {
		c.storeError(err)
		return
	}
	c.writeBool(swapped)
}

func cmdSetEX(c *client, args [][]byte)  { c.setEx(args, optEX, "setex") }
func cmdPSetEX(c *client, args [][]byte) { c.setEx(args, optPX, "psetex") }

func (c *client) setEx(args [][]byte, unit int, name string) {
	ttl, ok := c.expireTTL(unit, args[2], name)
	if !ok {
		return
	}
	if c.s.cluster {
		c.clusterSetWithTTL(args[1], args[3], ttl)
		return
	}
	if err := c.s.store.SetWithTTL(string(args[1]), args[3], ttl); err != nil {
		c.storeError(err)
		return
	}
	c.writeOK()
}

func cmdGetSet(c *client, args [][]byte) {
	var (
		old   []byte
		found bool
	)
	val := args[2]
	err := c.s.store.Update(string(args[1]), func(e shardkv.Entry) shardkv.Change {
		found = e.Found
		old = append(old[:0], e.Value...)
		return shardkv.Change{Action: shardkv.Put, Value: val}
	})
	c.replyOld(err, old, found)
}

func (c *client) replyOld(err error, old []byte, found bool) {
	switch {
	case err != nil:
		c.storeError(err)
	case found:
		c.writeBulk(old)
	default:
		c.writeNull()
	}
}

func cmdGetDel(c *client, args [][]byte) {
	var (
		old   []byte
		found bool
	)
	err := c.s.store.Update(string(args[1]), func(e shardkv.Entry) shardkv.Change {
		found = e.Found
		if !e.Found {
			return shardkv.Change{Action: shardkv.Keep}
		}
		old = append(old[:0], e.Value...)
		return shardkv.Change{Action: shardkv.Drop}
	})
	c.replyOld(err, old, found)
}

func cmdGetEx(c *client, args [][]byte) {
	flags, exp, ok := parseSetOptions(args[2:], true)
	if !ok {
		c.errSyntax()
		return
	}
	if flags == 0 {
		cmdGet(c, args)
		return
	}
	// As in Redis, a missing key is answered nil before the expire time
	// is checked: a bad time is an error only for a key that exists.
	var (
		ttl    time.Duration
		badExp string
	)
	if flags&optExpire != 0 {
		ttl, badExp = parseExpire(flags, exp, "getex", time.Now())
	}
	var (
		old   []byte
		found bool
	)
	err := c.s.store.Update(string(args[1]), func(e shardkv.Entry) shardkv.Change {
		found = e.Found
		if !e.Found || badExp != "" {
			return shardkv.Change{Action: shardkv.Keep}
		}
		old = append(old[:0], e.Value...)
		switch {
		case flags&optPersist != 0:
			if e.TTL == shardkv.NoTTL {
				return shardkv.Change{Action: shardkv.Keep}
			}
			return shardkv.Change{Action: shardkv.Put, Value: e.Value, Op: "persist"}
		case ttl <= 0:
			return shardkv.Change{Action: shardkv.Drop}
		default:
			return shardkv.Change{Action: shardkv.Put, Value: e.Value, TTL: ttl, Op: "expire"}
		}
	})
	if err == nil && found && badExp != "" {
		c.writeError(badExp)
		return
	}
	c.replyOld(err, old, found)
}

// MGET reads each key on its own (atomic per key); a key the store's
// validator refuses is reported as missing.
func cmdMGet(c *client, args [][]byte) {
	c.writeArray(len(args) - 1)
	st := c.s.store
	for i, k := range args[1:] {
		c.rd.hintArgs(args[1:], i, 1)
		if found, _ := st.View(string(k), c.bulkFn); !found {
			c.writeNull()
		}
	}
}

// checkValues refuses, before anything is written, a multi-key write one
// of whose values is too large.
func (c *client) checkValues(args [][]byte) bool {
	limit := c.s.store.MaxValueSize()
	for i := 2; i < len(args); i += 2 {
		if len(args[i]) > limit {
			c.writeError(tooLargeMsg(limit))
			return false
		}
	}
	return true
}

// MSET sets each key on its own (atomic per key, not across keys).
func cmdMSet(c *client, args [][]byte) {
	if len(args)%2 == 0 {
		c.errArity("mset")
		return
	}
	if !c.checkValues(args) {
		return
	}
	if c.s.cluster {
		c.clusterMSet(args)
		return
	}
	st := c.s.store
	for i := 1; i < len(args); i += 2 {
		c.rd.hintArgs(args[1:], i-1, 2)
		if err := st.Set(string(args[i]), args[i+1]); err != nil {
			c.storeError(err)
			return
		}
	}
	c.writeOK()
}

// MSETNX checks that no key exists, then creates each key with NX
// semantics (one Update per key). It is not atomic across keys: see the
// package documentation.
func cmdMSetNX(c *client, args [][]byte) {
	if len(args)%2 == 0 {
		c.errArity("msetnx")
		return
	}
	if !c.checkValues(args) {
		return
	}
	st := c.s.store
	for i := 1; i < len(args); i += 2 {
		if st.Exists(string(args[i])) {
			c.writeInt(0)
			return
		}
	}
	all := true
	for i := 1; i < len(args); i += 2 {
		val, created := args[i+1], false
		err := st.Update(string(args[i]), func(e shardkv.Entry) shardkv.Change {
			created = !e.Found
			if e.Found {
				return shardkv.Change{Action: shardkv.Keep}
			}
			return shardkv.Change{Action: shardkv.Put, Value: val}
		})
		if err != nil {
			c.storeError(err)
			return
		}
		all = all && created
	}
	c.writeBool(all)
}

func cmdStrlen(c *client, args [][]byte) {
	n := 0
	_, err := c.s.store.View(string(args[1]), func(v []byte) { n = len(v) })
	if err != nil {
		c.storeError(err)
		return
	}
	c.writeInt(int64(n))
}

// scratchValue returns c's value buffer, emptied; Update copies a Put's
// value, so one buffer serves every command of the client. Give it back
// with keepScratch.
func (c *client) scratchValue() []byte { return c.num[:0] }

// keepScratch makes buf c's scratch buffer again, unless it grew past
// 1 MiB: a client that built a large value (APPEND, SETRANGE) does not
// hold a copy of it while it idles.
func (c *client) keepScratch(buf []byte) {
	if cap(buf) > 1<<20 {
		buf = nil
	}
	c.num = buf[:0]
}

func cmdAppend(c *client, args [][]byte) {
	suffix := args[2]
	limit := c.s.store.MaxValueSize()
	var (
		n   int
		buf = c.scratchValue()
	)
	err := c.s.store.Update(string(args[1]), func(e shardkv.Entry) shardkv.Change {
		n = len(e.Value) + len(suffix)
		if n > limit { // the store would refuse it: do not build it
			return shardkv.Change{Action: shardkv.Keep}
		}
		buf = append(append(buf[:0], e.Value...), suffix...)
		return shardkv.Change{Action: shardkv.Put, Value: buf, KeepTTL: true, Op: "append"}
	})
	c.keepScratch(buf)
	switch {
	case err != nil:
		c.storeError(err)
	case n > limit:
		c.writeError(tooLargeMsg(limit))
	default:
		c.writeInt(int64(n))
	}
}

func cmdGetRange(c *client, args [][]byte) {
	start, ok := c.intArg(args[2])
	if !ok {
		return
	}
	end, ok := c.intArg(args[3])
	if !ok {
		return
	}
	if c.s.cluster {
		c.clusterGetRange(args[1], start, end)
		return
	}
	found, err := c.s.store.View(string(args[1]), func(v []byte) {
		c.writeBulk(substr(v, start, end))
	})
	if err != nil {
		c.storeError(err)
	} else if !found {
		c.writeBulk(nil)
	}
}

// substr is GETRANGE's slice, with Redis' index rules.
func substr(v []byte, start, end int64) []byte {
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		return nil
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		return nil
	}
	return v[start : end+1]
}

func cmdSetRange(c *client, args [][]byte) {
	off, ok := c.intArg(args[2])
	if !ok {
		return
	}
	if off < 0 {
		c.writeError("ERR offset is out of range")
		return
	}
	val := args[3]
	limit := int64(c.s.store.MaxValueSize())
	if len(val) > 0 && off > limit-int64(len(val)) { // off+len(val) > limit, without overflow
		c.writeError(tooLargeMsg(int(limit)))
		return
	}
	var (
		n   int
		buf = c.scratchValue()
	)
	err := c.s.store.Update(string(args[1]), func(e shardkv.Entry) shardkv.Change {
		n = len(e.Value)
		if len(val) == 0 {
			return shardkv.Change{Action: shardkv.Keep}
		}
		buf = append(buf[:0], e.Value...)
		if need := int(off) + len(val); need > len(buf) {
			buf = append(buf, make([]byte, need-len(buf))...)
		}
		copy(buf[off:], val)
		n = len(buf)
		return shardkv.Change{Action: shardkv.Put, Value: buf, KeepTTL: true, Op: "setrange"}
	})
	c.keepScratch(buf)
	if err != nil {
		c.storeError(err)
		return
	}
	c.writeInt(int64(n))
}

func cmdIncr(c *client, args [][]byte) { c.incrBy(args[1], 1) }
func cmdDecr(c *client, args [][]byte) { c.incrBy(args[1], -1) }

func cmdIncrBy(c *client, args [][]byte) {
	if d, ok := c.intArg(args[2]); ok {
		c.incrBy(args[1], d)
	}
}

func cmdDecrBy(c *client, args [][]byte) {
	d, ok := c.intArg(args[2])
	if !ok {
		return
	}
	if d == math.MinInt64 {
		c.writeError("ERR decrement would overflow")
		return
	}
	c.incrBy(args[1], -d)
}

// incrBy is INCR and its kin: one Update that parses the value as Redis
// does and refuses an overflow (Store.Increment would saturate). The
// key's TTL is kept; the event's Op is "incrby", as Redis names it.
func (c *client) incrBy(key []byte, delta int64) {
	if c.s.cluster {
		c.clusterIncrBy(key, delta)
		return
	}
	var (
		result int64
		fail   string
		buf    = c.scratchValue()
	)
	err := c.s.store.Update(string(key), func(e shardkv.Entry) shardkv.Change {
		fail = ""
		var cur int64
		if e.Found {
			v, ok := parseInt(e.Value)
			if !ok {
				fail = errNotInt
				return shardkv.Change{Action: shardkv.Keep}
			}
			cur = v
		}
		if (delta > 0 && cur > math.MaxInt64-delta) || (delta < 0 && cur < math.MinInt64-delta) {
			fail = errOverflow
			return shardkv.Change{Action: shardkv.Keep}
		}
		result = cur + delta
		buf = strconv.AppendInt(buf[:0], result, 10)
		return shardkv.Change{Action: shardkv.Put, Value: buf, KeepTTL: true, Op: "incrby"}
	})
	c.keepScratch(buf)
	switch {
	case err != nil:
		c.storeError(err)
	case fail != "":
		c.writeError(fail)
	default:
		c.writeInt(result)
	}
}

// Long doubles: Redis computes INCRBYFLOAT in C's long double, an x87
// 80-bit float with a 64-bit mantissa on the platforms it runs on, and
// prints it with "%.17Lf" less the trailing zeros. A big.Float of 64-bit
// precision rounds as that type does, so the results are Redis' own
// (0.1 + 0.2 is "0.3", not float64's "0.30000000000000004").
const (
	ldPrec    = 64
	ldMaxExp  = 16384 // 2^16384 overflows a long double
	ldMaxText = 5 * 1024
)

// parseLongDouble parses as Redis' string2ld (strtold): decimal or hex
// floats, "inf"/"infinity" (reported as inf), no spaces, no NaN.
func parseLongDouble(b []byte) (f *big.Float, inf, ok bool) {
	if len(b) == 0 || len(b) >= ldMaxText { // string2ld: slen >= sizeof(buf)
		return nil, false, false
	}
	switch b[0] {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return nil, false, false
	}
	s := string(b)
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 {
		return nil, false, false
	}
	switch strings.ToLower(body) {
	case "inf", "infinity":
		return nil, true, true
	}
	if strings.ContainsRune(s, '_') {
		return nil, false, false
	}
	if len(body) > 1 && body[0] == '0' && strings.ContainsRune("bBoO", rune(body[1])) {
		return nil, false, false
	}
	f = new(big.Float).SetPrec(ldPrec)
	if _, _, err := f.Parse(s, 0); err != nil || f.IsInf() {
		return nil, false, false
	}
	// strtold's ERANGE cases, which string2ld refuses: a value beyond the
	// long double range (HUGE_VAL), or one so small it rounds to zero.
	if f.Sign() != 0 {
		if exp := f.MantExp(nil); exp > ldMaxExp || new(big.Float).Abs(f).Cmp(ldUnderflow) <= 0 {
			return nil, false, false
		}
	}
	return f, false, true
}

// ldUnderflow is half the smallest (subnormal) long double, 2^-16446: a
// value no larger than it rounds to zero.
var ldUnderflow = new(big.Float).SetMantExp(big.NewFloat(0.5), -16445)

// formatLongDouble prints as Redis' ld2string in LD_STR_HUMAN mode.
func formatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

func cmdIncrByFloat(c *client, args [][]byte) {
	incr, incrInf, ok := parseLongDouble(args[2])
	if !ok {
		c.writeError(errNotFloat)
		return
	}
	var (
		fail   string
		result string
	)
	err := c.s.store.Update(string(args[1]), func(e shardkv.Entry) shardkv.Change {
		fail = ""
		cur := new(big.Float).SetPrec(ldPrec)
		if e.Found {
			v, inf, ok := parseLongDouble(e.Value)
			if !ok {
				fail = errNotFloat
				return shardkv.Change{Action: shardkv.Keep}
			}
			if inf {
				fail = errNaNInf
				return shardkv.Change{Action: shardkv.Keep}
			}
			cur = v
		}
		if incrInf {
			fail = errNaNInf
			return shardkv.Change{Action: shardkv.Keep}
		}
		sum := new(big.Float).SetPrec(ldPrec).Add(cur, incr)
		if sum.MantExp(nil) > ldMaxExp {
			fail = errNaNInf
			return shardkv.Change{Action: shardkv.Keep}
		}
		result = formatLongDouble(sum)
		return shardkv.Change{Action: shardkv.Put, Value: []byte(result), KeepTTL: true, Op: "incrbyfloat"}
	})
	switch {
	case err != nil:
		c.storeError(err)
	case fail != "":
		c.writeError(fail)
	default:
		c.writeBulkString(result)
	}
}

// CAS key expected newvalue: Store.CompareAndSwap, replying 1 if the value
// was expected and is now newvalue, else 0. expected is a value, even an
// empty one: CAS cannot test for an absent key (SET NX does).
func cmdCAS(c *client, args [][]byte) {
	expected := args[2]
	if expected == nil {
		expected = []byte{}
	}
	swapped, err := c.s.store.CompareAndSwap(string(args[1]), expected, args[3])
	if err != nil {
		c.storeError(err)
		return
	}
	c.writeBool(swapped)
}
