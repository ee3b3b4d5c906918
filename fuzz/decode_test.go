package fuzz

// The byte format FuzzOps decodes, and its inverse (the encoder the seed
// corpus is written with).
//
// An input is a 2-byte header and then operations until the bytes run out
// (a short read yields zero bytes, so every input decodes):
//
//	header[0]: bits 0-2 shards (shardTable), bits 3-5 watch capacity
//	           (capTable), bit 6 a custom key validator (rejects keys that
//	           start with "b", accepts everything else, "" included)
//	header[1]: bits 0-3 MaxKeys (maxKeysTable), bits 4-6 MaxValueSize
//	           (maxValTable)
//
// Each operation is an opcode byte (opTable[b%32]) and its arguments:
//
//	key      1 byte, keyTable[b%len]
//	prefix   1 byte, prefixTable[b%len]
//	value    1 byte: b < 0x80 valueTable[b%len]; else b&0x0f raw bytes
//	         follow, after longPads[b>>4&7] (nothing for 0; 24 to 4096
//	         bytes for the others, so values run past 24 bytes with the
//	         input's own bytes at the end)
//	ttl/adv  1 byte: b < 0x80 ttlTable/advTable[b%len]; else a raw duration:
//	         4 bytes big-endian count times scale[b&3] (ns, µs, ms, s),
//	         negated if b&4
//	delta    1 byte: b < 0x80 deltaTable[b%len]; else 8 raw bytes, int64 BE
//	expected 1 byte, mode b%4: nil, empty, the key's current value in the
//	         model (or "x" when it has none), or a value argument that follows
//	n        1 byte, maxKeysTable/maxValTable[b%len] (SetMaxKeys/SetMaxValueSize)
//
//	Get GetString Delete Exists TTL   key
//	Set SetString                     key value
//	SetWithTTL                        key value ttl
//	ListKeys                          prefix
//	Increment                         key delta
//	CompareAndSwap                    key expected value
//	SetMaxKeys SetMaxValueSize        n
//	Advance                           adv (the fake clock moves; the reaper runs)
//	Clear CleanExpired Drain          -
//	Close                             1 byte; closes only if it is 0xC1, else a no-op
//	Ctx                               1 byte c: the Context variant ctxTable[c&7],
//	                                  with an already-cancelled ctx if c&8; then
//	                                  that operation's arguments

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

type opKind uint8

const (
	opGet opKind = iota
	opGetString
	opSet
	opSetString
	opSetWithTTL
	opDelete
	opExists
	opListKeys
	opIncrement
	opCAS
	opClear
	opCleanExpired
	opSetMaxKeys
	opSetMaxValueSize
	opAdvance
	opTTL
	opDrain
	opClose
	opCtx
	opNop // a Close whose confirmation byte was wrong
	numOpKinds
)

var opNames = [numOpKinds]string{
	"Get", "GetString", "Set", "SetString", "SetWithTTL", "Delete", "Exists",
	"ListKeys", "Increment", "CompareAndSwap", "Clear", "CleanExpired",
	"SetMaxKeys", "SetMaxValueSize", "Advance", "TTL", "Drain", "Close", "Ctx",
	"Nop",
}

func (k opKind) String() string { return opNames[k] }

// opTable maps an opcode byte (mod 32) to an operation. Writes and clock
// advances appear more than once, Clear once, Close once (and it needs a
// confirmation byte besides), so random inputs rarely empty or close the
// store early.
var opTable = [32]opKind{
	opGet, opGetString, opSet, opSetString, opSetWithTTL, opDelete, opExists, opListKeys,
	opIncrement, opCAS, opClear, opCleanExpired, opSetMaxKeys, opSetMaxValueSize, opAdvance, opTTL,
	opDrain, opClose, opCtx, opSetWithTTL, opSetWithTTL, opAdvance, opAdvance, opSet,
	opGet, opIncrement, opCAS, opDelete, opDrain, opExists, opAdvance, opSetWithTTL,
}

const closeConfirm = 0xC1

// ctxTable: the operations the Ctx opcode runs through their Context
// variant.
var ctxTable = [8]opKind{opGet, opSet, opSetWithTTL, opDelete, opExists, opListKeys, opIncrement, opCAS}

const (
	year    = 365 * 24 * time.Hour
	maxOps  = 256
	maxTime = int64(150 * year) // the fake clock never goes further
)

// shardTable: 0 means WithShards is not passed (the default count).
var shardTable = [8]int{0, 1, 2, 4, 8, 16, 64, 3}

// capTable: 0 means WithWatchCapacity is not passed (1024).
var capTable = [8]int{0, 1, 2, 3, 4, 8, 16, 64}

var maxKeysTable = [16]int{10000, 0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, -1, 7, 9, 100}

var maxValTable = [8]int{1 << 20, 0, 1, 2, 4, 8, 16, -5}

// keyTable: eight valid keys (so operations collide, and prefixes nest), a
// key of exactly MaxKeyLen bytes, and invalid ones.
var keyTable = []string{
	"a", "b", "a/1", "a/2", "ab", "b:c", "é", "数.x",
	strings.Repeat("k", 1024), // valid, the longest
	"", "a b", "x\xff", strings.Repeat("k", 1025),
}

var prefixTable = []string{"", "a", "a/", "b", "é", "k", "zz", "a/1", "a b"}

var valueTable = [][]byte{
	[]byte(""), []byte("x"), []byte("y"), []byte("hello"), []byte("0"), []byte("1"),
	[]byte("-1"), []byte("42"), []byte("+7"), []byte("007"),
	[]byte("9223372036854775807"), []byte("-9223372036854775808"),
	[]byte("9223372036854775808"), []byte("-"), []byte("abc"), []byte("\xff\xfe"),
	[]byte(" 1"), []byte("0123456789abcdefghij"), nil,
}

// longPads: the bytes before a raw value's own. All but 0 make a value
// longer than 24 bytes; the first is zeros, so digits after it make a long
// decimal number with leading zeros.
var longPads = [8][]byte{
	nil, bytes.Repeat([]byte("0"), 24), padding(24), padding(25),
	padding(64), padding(255), padding(1000), padding(4096),
}

// padding is n bytes cycling through 61 distinct ones, so that a value
// shifted, cut or repeated by fewer than 61 bytes reads differently.
func padding(n int) []byte {
	const cycle = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345678"
	b := make([]byte, n)
	for i := range b {
		b[i] = cycle[i%len(cycle)]
	}
	return b
}

// ttlTable reaches every wheel level: level L holds deadlines under 64^(L+1)
// ticks of 1 ms (64 ms, 4.1 s, 4.4 min, 4.7 h, 12.4 days, 2.2 years,
// 139 years); beyond is the overflow list, and MaxInt64 saturates.
var ttlTable = []time.Duration{
	0, -1, -time.Hour, 1, 300 * time.Microsecond, time.Millisecond - 1,
	time.Millisecond, time.Millisecond + 1, 2 * time.Millisecond,
	3*time.Millisecond + 500*time.Microsecond, 5 * time.Millisecond,
	63 * time.Millisecond, 64 * time.Millisecond, 65 * time.Millisecond, // level 0 | 1
	time.Second, 4095 * time.Millisecond, 4097 * time.Millisecond, // level 1 | 2
	90 * time.Second, 263 * time.Second, // level 2 | 3
	time.Hour, 5 * time.Hour, // level 3 | 4
	3 * 24 * time.Hour, 13 * 24 * time.Hour, // level 4 | 5
	year, 3 * year, // level 5 | 6
	50 * year, 139 * year, 140 * year, 200 * year, // level 6 | overflow
	math.MaxInt64, math.MaxInt64 - time.Millisecond, math.MinInt64,
}

var advTable = []time.Duration{
	1, 100 * time.Microsecond, 500 * time.Microsecond, time.Millisecond - 1,
	time.Millisecond, time.Millisecond + 500*time.Microsecond, 2 * time.Millisecond,
	3 * time.Millisecond, 10 * time.Millisecond, 63 * time.Millisecond,
	64 * time.Millisecond, 100 * time.Millisecond, time.Second,
	4100 * time.Millisecond, time.Minute, 5 * time.Minute, time.Hour,
	5 * time.Hour, 24 * time.Hour, 13 * 24 * time.Hour, year, 3 * year,
	50 * year, 140 * year,
}

var durScales = [4]time.Duration{time.Nanosecond, time.Microsecond, time.Millisecond, time.Second}

var deltaTable = []int64{
	0, 1, -1, 2, -2, 10, 1000, math.MaxInt64, math.MinInt64,
	math.MaxInt64 - 1, math.MinInt64 + 1, 1 << 62, -(1 << 62),
}

type expMode uint8

const (
	expNil expMode = iota
	expEmpty
	expCurrent
	expValue
)

// config is what the header decodes to.
type config struct {
	shards    int // 0: default
	watchCap  int // 0: default
	validator bool
	maxKeys   int
	maxVal    int
}

func (c config) String() string {
	v := "ValidateKey"
	if c.validator {
		v = "custom (rejects keys starting with b)"
	}
	return fmt.Sprintf("shards=%d watchCapacity=%d maxKeys=%d maxValueSize=%d validator=%s",
		c.shards, c.watchCap, c.maxKeys, c.maxVal, v)
}

// op is one decoded operation. For opCtx, sub is the operation run through
// its Context variant and the argument fields are sub's.
type op struct {
	kind   opKind
	sub    opKind
	cancel bool
	key    string
	val    []byte
	exp    expMode
	expVal []byte
	ttl    time.Duration
	delta  int64
	prefix string
	n      int
	adv    time.Duration
}

func (o op) String() string {
	if o.kind == opCtx {
		s := o
		s.kind = o.sub
		c := "live ctx"
		if o.cancel {
			c = "cancelled ctx"
		}
		return strings.Replace(s.String(), "(", "Context("+c+", ", 1)
	}
	switch o.kind {
	case opGet, opGetString, opDelete, opExists, opTTL:
		return fmt.Sprintf("%s(%s)", o.kind, fmtKey(o.key))
	case opSet, opSetString:
		return fmt.Sprintf("%s(%s, %s)", o.kind, fmtKey(o.key), fmtVal(o.val))
	case opSetWithTTL:
		return fmt.Sprintf("%s(%s, %s, %s)", o.kind, fmtKey(o.key), fmtVal(o.val), fmtDur(int64(o.ttl)))
	case opListKeys:
		return fmt.Sprintf("%s(%q)", o.kind, o.prefix)
	case opIncrement:
		return fmt.Sprintf("%s(%s, %d)", o.kind, fmtKey(o.key), o.delta)
	case opCAS:
		e := [...]string{"nil", `""`, "current", fmtVal(o.expVal)}[o.exp]
		return fmt.Sprintf("%s(%s, %s, %s)", o.kind, fmtKey(o.key), e, fmtVal(o.val))
	case opSetMaxKeys, opSetMaxValueSize:
		return fmt.Sprintf("%s(%d)", o.kind, o.n)
	case opAdvance:
		return fmt.Sprintf("%s(%s)", o.kind, fmtDur(int64(o.adv)))
	}
	return o.kind.String() + "()"
}

// fmtKey and fmtVal render a key and a value for people: in full when
// short, else their start, length and a hash of every byte, so that two
// different long ones (almost surely) look different. Nothing is compared
// in this form; see fmtr.
func fmtKey(k string) string {
	if len(k) > 16 {
		return fmt.Sprintf(`"%s…"(%d bytes, crc32 %08x)`, k[:4], len(k), crc32.ChecksumIEEE([]byte(k)))
	}
	return strconv.Quote(k)
}

func fmtVal(v []byte) string {
	if v == nil {
		return "nil"
	}
	if len(v) > 24 {
		return fmt.Sprintf(`%s…(%d bytes, crc32 %08x)`, strconv.Quote(string(v[:24])), len(v), crc32.ChecksumIEEE(v))
	}
	return strconv.Quote(string(v))
}

// quoteVal renders every byte of a value (nil apart from empty):
// strconv.Quote is reversible, so two renderings are equal exactly when
// the bytes are.
func quoteVal(v []byte) string {
	if v == nil {
		return "nil"
	}
	return strconv.Quote(string(v))
}

// fmtr is a way of rendering keys and values. The harness renders each
// result twice: with exactFmt, every byte of every key and value, which is
// what it compares, and with showFmt, shortened, which is what a failure
// prints.
type fmtr struct {
	key func(string) string
	val func([]byte) string
}

var (
	exactFmt = fmtr{key: strconv.Quote, val: quoteVal}
	showFmt  = fmtr{key: fmtKey, val: fmtVal}
)

// fmtDur prints a store-clock time or a duration, with years for the far
// ones.
func fmtDur(d int64) string {
	switch {
	case d == math.MaxInt64:
		return "MaxInt64"
	case d == math.MinInt64:
		return "MinInt64"
	case d >= int64(year) || d <= -int64(year):
		return fmt.Sprintf("%s(%.3fy)", time.Duration(d), float64(d)/float64(year))
	}
	return time.Duration(d).String()
}

// reader hands out the input's bytes, then zeros.
type reader struct {
	b []byte
	i int
}

func (r *reader) more() bool { return r.i < len(r.b) }

func (r *reader) byte() byte {
	if r.i >= len(r.b) {
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *reader) bytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = r.byte()
	}
	return out
}

func (r *reader) key() string    { return keyTable[int(r.byte())%len(keyTable)] }
func (r *reader) prefix() string { return prefixTable[int(r.byte())%len(prefixTable)] }

func (r *reader) value() []byte {
	b := r.byte()
	if b < 0x80 {
		return valueTable[int(b)%len(valueTable)]
	}
	pad, raw := longPads[b>>4&7], r.bytes(int(b&0x0f))
	if len(pad) == 0 {
		return raw // empty, not nil, when there are no raw bytes
	}
	return append(slices.Clone(pad), raw...)
}

func (r *reader) dur(table []time.Duration) time.Duration {
	b := r.byte()
	if b < 0x80 {
		return table[int(b)%len(table)]
	}
	d := time.Duration(binary.BigEndian.Uint32(r.bytes(4))) * durScales[b&3]
	if b&4 != 0 {
		d = -d
	}
	return d
}

func (r *reader) delta() int64 {
	b := r.byte()
	if b < 0x80 {
		return deltaTable[int(b)%len(deltaTable)]
	}
	return int64(binary.BigEndian.Uint64(r.bytes(8)))
}

// decodeOps turns FuzzOps's bytes into a configuration and operations.
func decodeOps(data []byte) (config, []op) {
	r := &reader{b: data}
	h0, h1 := r.byte(), r.byte()
	c := config{
		shards:    shardTable[h0&7],
		watchCap:  capTable[h0>>3&7],
		validator: h0&0x40 != 0,
		maxKeys:   maxKeysTable[h1&15],
		maxVal:    maxValTable[h1>>4&7],
	}
	var ops []op
	for r.more() && len(ops) < maxOps {
		o := op{kind: opTable[r.byte()%32]}
		kind := o.kind
		if kind == opCtx {
			c := r.byte()
			o.sub, o.cancel = ctxTable[c&7], c&8 != 0
			kind = o.sub
		}
		switch kind {
		case opGet, opGetString, opDelete, opExists, opTTL:
			o.key = r.key()
		case opSet, opSetString:
			o.key, o.val = r.key(), r.value()
		case opSetWithTTL:
			o.key, o.val = r.key(), r.value()
			o.ttl = r.dur(ttlTable)
		case opListKeys:
			o.prefix = r.prefix()
		case opIncrement:
			o.key, o.delta = r.key(), r.delta()
		case opCAS:
			o.key = r.key()
			o.exp = expMode(r.byte() % 4)
			if o.exp == expValue {
				o.expVal = r.value()
			}
			o.val = r.value()
		case opSetMaxKeys:
			o.n = maxKeysTable[int(r.byte())%len(maxKeysTable)]
		case opSetMaxValueSize:
			o.n = maxValTable[int(r.byte())%len(maxValTable)]
		case opAdvance:
			o.adv = r.dur(advTable)
		case opClose:
			if r.byte() != closeConfirm {
				o.kind = opNop
			}
		}
		ops = append(ops, o)
	}
	return c, ops
}

// encoder writes the bytes decodeOps reads back as the same operations. The
// seed corpus is written with it.
type encoder struct{ b []byte }

func mustIndex[T comparable](table []T, v T, what string) byte {
	i := slices.Index(table, v)
	if i < 0 {
		panic(fmt.Sprintf("encoder: %s %v is not in its table", what, v))
	}
	return byte(i)
}

func newEncoder(c config) *encoder {
	h0 := mustIndex(shardTable[:], c.shards, "shards") |
		mustIndex(capTable[:], c.watchCap, "watch capacity")<<3
	if c.validator {
		h0 |= 0x40
	}
	h1 := mustIndex(maxKeysTable[:], c.maxKeys, "maxKeys") |
		mustIndex(maxValTable[:], c.maxVal, "maxVal")<<4
	return &encoder{b: []byte{h0, h1}}
}

func (e *encoder) key(k string) { e.b = append(e.b, mustIndex(keyTable, k, "key")) }

func (e *encoder) value(v []byte) {
	for i, t := range valueTable {
		if bytes.Equal(t, v) && (t == nil) == (v == nil) {
			e.b = append(e.b, byte(i))
			return
		}
	}
	for m := len(longPads) - 1; m >= 0; m-- {
		if pad := longPads[m]; bytes.HasPrefix(v, pad) && len(v)-len(pad) <= 15 {
			e.b = append(append(e.b, 0x80|byte(m)<<4|byte(len(v)-len(pad))), v[len(pad):]...)
			return
		}
	}
	panic(fmt.Sprintf("encoder: value %s is neither in valueTable nor a long pad and at most 15 bytes", fmtVal(v)))
}

func (e *encoder) dur(table []time.Duration, d time.Duration) {
	if i := slices.Index(table, d); i >= 0 {
		e.b = append(e.b, byte(i))
		return
	}
	neg := byte(0)
	if d < 0 {
		neg, d = 4, -d
	}
	for s := 3; s >= 0; s-- {
		if d%durScales[s] == 0 && d/durScales[s] <= math.MaxUint32 {
			e.b = append(e.b, 0x80|neg|byte(s))
			e.b = binary.BigEndian.AppendUint32(e.b, uint32(d/durScales[s]))
			return
		}
	}
	panic(fmt.Sprintf("encoder: duration %v cannot be encoded", d))
}

func (e *encoder) op(o op) {
	e.b = append(e.b, mustIndex(opTable[:], o.kind, "op"))
	kind := o.kind
	if kind == opCtx {
		c := mustIndex(ctxTable[:], o.sub, "ctx op")
		if o.cancel {
			c |= 8
		}
		e.b = append(e.b, c)
		kind = o.sub
	}
	switch kind {
	case opGet, opGetString, opDelete, opExists, opTTL:
		e.key(o.key)
	case opSet, opSetString:
		e.key(o.key)
		e.value(o.val)
	case opSetWithTTL:
		e.key(o.key)
		e.value(o.val)
		e.dur(ttlTable, o.ttl)
	case opListKeys:
		e.b = append(e.b, mustIndex(prefixTable, o.prefix, "prefix"))
	case opIncrement:
		e.key(o.key)
		if i := slices.Index(deltaTable, o.delta); i >= 0 {
			e.b = append(e.b, byte(i))
		} else {
			e.b = binary.BigEndian.AppendUint64(append(e.b, 0x80), uint64(o.delta))
		}
	case opCAS:
		e.key(o.key)
		e.b = append(e.b, byte(o.exp))
		if o.exp == expValue {
			e.value(o.expVal)
		}
		e.value(o.val)
	case opSetMaxKeys:
		e.b = append(e.b, mustIndex(maxKeysTable[:], o.n, "maxKeys"))
	case opSetMaxValueSize:
		e.b = append(e.b, mustIndex(maxValTable[:], o.n, "maxVal"))
	case opAdvance:
		e.dur(advTable, o.adv)
	case opClose:
		e.b = append(e.b, closeConfirm)
	case opNop, opDrain, opClear, opCleanExpired:
	}
}

// Shorthands for writing seeds.

func get(k string) op                { return op{kind: opGet, key: k} }
func getString(k string) op          { return op{kind: opGetString, key: k} }
func set(k, v string) op             { return op{kind: opSet, key: k, val: []byte(v)} }
func setBytes(k string, v []byte) op { return op{kind: opSet, key: k, val: v} }
func setString(k, v string) op       { return op{kind: opSetString, key: k, val: []byte(v)} }
func setTTL(k, v string, ttl time.Duration) op {
	return op{kind: opSetWithTTL, key: k, val: []byte(v), ttl: ttl}
}
func del(k string) op            { return op{kind: opDelete, key: k} }
func exists(k string) op         { return op{kind: opExists, key: k} }
func ttlOf(k string) op          { return op{kind: opTTL, key: k} }
func list(p string) op           { return op{kind: opListKeys, prefix: p} }
func incr(k string, d int64) op  { return op{kind: opIncrement, key: k, delta: d} }
func casNil(k, nv string) op     { return op{kind: opCAS, key: k, exp: expNil, val: []byte(nv)} }
func casEmpty(k, nv string) op   { return op{kind: opCAS, key: k, exp: expEmpty, val: []byte(nv)} }
func casCurrent(k, nv string) op { return op{kind: opCAS, key: k, exp: expCurrent, val: []byte(nv)} }
func casValue(k, expected, nv string) op {
	return op{kind: opCAS, key: k, exp: expValue, expVal: []byte(expected), val: []byte(nv)}
}
func clearAll() op                { return op{kind: opClear} }
func cleanExpired() op            { return op{kind: opCleanExpired} }
func setMaxKeys(n int) op         { return op{kind: opSetMaxKeys, n: n} }
func setMaxValueSize(n int) op    { return op{kind: opSetMaxValueSize, n: n} }
func advance(d time.Duration) op  { return op{kind: opAdvance, adv: d} }
func drain() op                   { return op{kind: opDrain} }
func closeStore() op              { return op{kind: opClose} }
func viaCtx(o op, cancel bool) op { o.sub, o.kind, o.cancel = o.kind, opCtx, cancel; return o }
