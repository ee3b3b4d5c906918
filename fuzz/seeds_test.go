package fuzz

// The hand-written seed corpus. Seeds are written here as operations, and
// encoded into the checked-in files under testdata/fuzz/<target>/seed-*:
//
//	SHARDKV_WRITE_SEEDS=1 go test -run TestWriteSeedCorpus ./fuzz
//
// TestSeedCorpusUpToDate fails when the files and this list disagree, and
// TestSeedCorpusCoverage when the FuzzOps corpus (seeds, and every crasher
// kept beside them) stops reaching every operation, every error, every
// wheel level and every way an entry is reclaimed.

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var defaultConfig = config{maxKeys: 10000, maxVal: 1 << 20}

func with(f func(*config)) config {
	c := defaultConfig
	f(&c)
	return c
}

func encodeOps(c config, ops ...op) []byte {
	e := newEncoder(c)
	for _, o := range ops {
		e.op(o)
	}
	return e.b
}

var k1024 = strings.Repeat("k", 1024)
var k1025 = strings.Repeat("k", 1025)

// long is longPads[m] followed by tail: a value over 24 bytes (for m > 0)
// whose own bytes come last.
func long(m int, tail string) string { return string(longPads[m]) + tail }

// opsSeeds are FuzzOps's seeds, by name.
func opsSeeds() map[string][]byte {
	us := time.Microsecond
	ms := time.Millisecond
	day := 24 * time.Hour
	seeds := map[string][]byte{
		"basics": encodeOps(defaultConfig,
			set("a", "x"), get("a"), getString("a"), exists("a"), ttlOf("a"),
			setString("a/1", "hello"), setBytes("a/2", nil), get("a/2"),
			list(""), list("a"), list("a/"), list("b"), list("zz"),
			del("a"), del("a"), get("a"), exists("a"), drain(),
			set("b", "\xff\xfe"), getString("b"), get("b"),
			set("é", "1"), incr("é", 41), get("é"), incr("数.x", -2),
			set(k1024, "long key"), get(k1024), list("k"), drain(),
		),
		"errors": encodeOps(with(func(c *config) { c.maxKeys, c.maxVal = 2, 4 }),
			set("", "x"), set("a b", "x"), set("x\xff", "x"), set(k1025, "x"),
			get(""), getString("a b"), del("x\xff"), incr("", 1), casNil("", "x"),
			ttlOf("a b"), exists(""), exists("a b"), list("a b"),
			set("a", "hello"), casNil("a", "hello"), setTTL("a", "hello", 5*ms),
			set("a", "abc"), incr("a", 1), getString("a"),
			set("b", "y"), set("b", "z"), // the second key, then an overwrite at the quota
			set("a/1", "x"), setString("a/1", "x"), setTTL("a/1", "x", time.Hour),
			incr("a/1", 1), casNil("a/1", "x"), casCurrent("a/1", "x"),
			casValue("a", "nope", "hello"), // too large even though expected does not match
			setMaxValueSize(1<<20), set("a", "9223372036854775808"), incr("a", 1),
			set("b", "\xff\xfe"), getString("b"), incr("b", 1), set("b", " 1"), incr("b", 1),
			set("b", "-"), incr("b", 1), set("b", ""), incr("b", 1), drain(),
		),
		"closed": encodeOps(with(func(c *config) { c.watchCap = 4 }),
			set("a", "x"), setTTL("b", "y", 5*ms), set("a/1", "z"), closeStore(),
			get("a"), getString("a"), set("a", "x"), setString("a", "x"), setTTL("a", "x", ms),
			del("a"), exists("a"), ttlOf("a"), list(""), incr("a", 1), casNil("ab", "x"),
			casCurrent("a", "y"), set("", "x"), clearAll(), cleanExpired(),
			setMaxKeys(3), setMaxValueSize(8), set("a", "0123456789abcdefghij"),
			advance(10*ms),
			viaCtx(get("a"), false), viaCtx(set("a", "x"), false), viaCtx(setTTL("a", "x", ms), false),
			viaCtx(del("a"), false), viaCtx(exists("a"), false), viaCtx(list(""), false),
			viaCtx(incr("a", 1), false), viaCtx(casNil("a", "x"), false),
			viaCtx(get("a"), true), viaCtx(exists("a"), true), drain(), closeStore(), drain(),
		),
		"context": encodeOps(defaultConfig,
			viaCtx(set("a", "x"), false), viaCtx(get("a"), false), viaCtx(setTTL("b", "y", 5*ms), false),
			viaCtx(exists("b"), false), viaCtx(exists("a b"), false), viaCtx(list(""), false),
			viaCtx(incr("ab", 1), false), viaCtx(incr("a/1", 1), false), viaCtx(casNil("a/2", "z"), false),
			viaCtx(casCurrent("a", "w"), false), viaCtx(del("a"), false), viaCtx(set("", "x"), false),
			viaCtx(get("a"), true), viaCtx(set("a", "x"), true), viaCtx(setTTL("a", "x", ms), true),
			viaCtx(del("b"), true), viaCtx(exists("b"), true), viaCtx(list(""), true),
			viaCtx(incr("a/1", 1), true), viaCtx(casCurrent("a/1", "q"), true), viaCtx(set("", "x"), true),
			drain(), advance(10*ms), drain(),
		),
		// Every wheel level, one key at a time, each advanced to its expiry.
		"wheel-levels-one-by-one": encodeOps(with(func(c *config) { c.shards = 1 }),
			setTTL("a", "L0", 5*ms), advance(5*ms),
			setTTL("a", "L1", time.Second), advance(time.Second),
			setTTL("a", "L2", 90*time.Second), advance(5*time.Minute),
			setTTL("a", "L3", time.Hour), advance(time.Hour),
			setTTL("a", "L4", 3*day), advance(13*day),
			setTTL("a", "L5", year), advance(year),
			setTTL("a", "L6", 50*year), advance(50*year),
			drain(),
		),
		// Every level at once, in one shard and then in the default shards,
		// then jumps far enough that all but the saturated deadline expire,
		// past the overflow list's look at 139.4 years.
		"wheel-levels-together": encodeOps(with(func(c *config) { c.shards = 1 }),
			setTTL("a", "L0", 63*ms), setTTL("b", "L1", 65*ms), setTTL("a/1", "L1", 4095*ms),
			setTTL("a/2", "L2", 4097*ms), setTTL("ab", "L3", 263*time.Second), setTTL("b:c", "L4", 5*time.Hour),
			setTTL("é", "L5", 13*day), setTTL("数.x", "L6", 3*year), setTTL(k1024, "overflow", 140*year),
			ttlOf("a"), ttlOf(k1024), list(""),
			advance(64*ms), advance(ms), drain(), advance(4100*ms), advance(5*time.Minute),
			advance(5*time.Hour), advance(13*day), advance(3*year), drain(), ttlOf(k1024),
			advance(140*year), drain(), list(""),
		),
		"wheel-levels-sharded": encodeOps(defaultConfig,
			setTTL("a", "L0", 63*ms), setTTL("b", "L1", 65*ms), setTTL("a/1", "L2", 90*time.Second),
			setTTL("a/2", "L3", time.Hour), setTTL("ab", "L4", 3*day), setTTL("b:c", "L5", year),
			setTTL("é", "L6", 139*year), setTTL("数.x", "overflow", math.MaxInt64),
			setTTL(k1024, "overflow", math.MaxInt64-ms), ttlOf("数.x"),
			advance(50*year), drain(), advance(140*year), drain(), ttlOf("数.x"), ttlOf(k1024), list(""),
		),
		// Entries expired but not yet reclaimed (the clock stops inside a
		// tick), and every way they are reclaimed.
		"expired-unreclaimed": encodeOps(defaultConfig,
			setTTL("a", "x", 300*us), setTTL("b", "y", 300*us), setTTL("a/1", "z", ms-1),
			setTTL("a/2", "w", 300*us), setTTL("ab", "1", 300*us), setTTL("b:c", "v", 300*us),
			setTTL("é", "u", 300*us),
			advance(500*us), get("a"), getString("b"), exists("a"), list(""), ttlOf("a"),
			set("a", "x2"), del("b"), incr("ab", 5), casNil("a/2", "n"), casValue("b:c", "v", "n"),
			drain(), cleanExpired(), drain(), advance(500*us), drain(),
			setTTL("a", "t", 1), advance(1), casCurrent("a", "q"), drain(),
		),
		"quota-reclaim": encodeOps(with(func(c *config) { c.maxKeys = 2 }),
			setTTL("a", "x", 300*us), set("b", "y"), advance(500*us),
			exists("a"), set("a/1", "z"), drain(), // full: a is reclaimed and a/1 admitted
			setTTL("a/1", "z", 200*us), advance(500*us), incr("ab", 1), drain(),
			setTTL("ab", "z", 200*us), advance(500*us), casNil("a/2", "n"), drain(),
			setTTL("a/2", "z", 200*us), advance(100*us), setTTL("é", "n", time.Hour), drain(),
			setMaxKeys(1), set("b:c", "x"), set("b", "over"), del("b"), set("b:c", "x"),
			del("é"), set("b:c", "x"), setMaxKeys(0), incr("b:c", 1), set("a", "x"),
			setMaxKeys(-1), set("a", "x"), setMaxKeys(10000), set("a", "x"), drain(),
		),
		"ttl-zero-and-negative": encodeOps(with(func(c *config) { c.shards = 2 }),
			setTTL("a", "x", 0), setTTL("b", "y", -1), setTTL("a/1", "z", -time.Hour),
			setTTL("a/2", "w", math.MinInt64), get("a"), list(""), drain(),
			advance(500*us), setTTL("a", "x", 0), get("a"), setTTL("b", "y", -1), set("a", "x2"),
			advance(100*us), setTTL("ab", "v", 0), cleanExpired(), advance(ms), drain(),
			advance(100*time.Second), advance(300*us), setTTL("b:c", "v", 0), setTTL("é", "v", 0),
			incr("b:c", 1), advance(ms), drain(),
		),
		"increment-saturation": encodeOps(defaultConfig,
			incr("a", math.MaxInt64), incr("a", 1), incr("a", math.MaxInt64), incr("a", math.MinInt64),
			incr("a", math.MinInt64), incr("a", -1), incr("a", math.MinInt64+1), incr("a", 1<<62),
			set("b", "-9223372036854775808"), incr("b", -1), incr("b", -(1<<62)), incr("b", math.MaxInt64),
			set("b", "9223372036854775807"), incr("b", 0), incr("b", 2), incr("b", math.MaxInt64-1),
			set("b", "+7"), incr("b", 1), set("b", "007"), incr("b", -2), set("b", "-1"), incr("b", 12345),
			incr("a/1", math.MinInt64), incr("a/1", -2), get("a/1"), drain(),
		),
		"compare-and-swap": encodeOps(defaultConfig,
			casNil("a", "x"), casNil("a", "y"), casEmpty("a", "z"), casValue("a", "stale", "q"),
			casCurrent("a", "w"), get("a"), set("a", ""), casNil("a", "n"), casEmpty("a", "e"),
			casEmpty("b", "e"), casCurrent("b", "e"), casValue("b", "", "e"),
			op{kind: opCAS, key: "a", exp: expCurrent, val: nil}, get("a"),
			setTTL("a", "t", 5*ms), casCurrent("a", "keep"), ttlOf("a"), advance(10*ms), get("a"),
			setTTL("b", "t", 300*us), advance(500*us), casValue("b", "t", "late"), casNil("b", "fresh"),
			drain(),
		),
		"lagged-subscriber": encodeOps(with(func(c *config) { c.watchCap = 2 }),
			set("a", "1"), set("b", "2"), set("a/1", "3"), set("a/2", "4"), drain(),
			set("a", "5"), set("a", "6"), drain(),
			setTTL("a", "x", 300*us), setTTL("b", "y", 300*us), setTTL("a/1", "z", 300*us),
			advance(500*us), cleanExpired(), drain(),
			setTTL("a", "x", ms), setTTL("b", "y", ms), setTTL("a/1", "z", ms), setTTL("a/2", "z", ms),
			advance(ms), drain(),
		),
		"lagged-by-one": encodeOps(with(func(c *config) { c.watchCap = 1 }),
			set("a", "1"), drain(), set("a", "2"), set("b", "3"), drain(), del("a"), del("b"), drain(),
		),
		"clear": encodeOps(defaultConfig,
			setTTL("a", "x", 5*ms), set("b", "y"), setTTL("a/1", "z", time.Hour), clearAll(),
			get("a"), exists("b"), list(""), advance(10*ms), set("a", "again"), setTTL("b", "t", 2*ms),
			advance(time.Hour), drain(), clearAll(), clearAll(), drain(),
		),
		"max-value-size": encodeOps(defaultConfig,
			setMaxValueSize(0), set("a", ""), set("a", "x"), casNil("b", "x"), casValue("b", "no", "xy"),
			setMaxValueSize(-5), setTTL("a", "x", ms), setMaxValueSize(2), set("a", "xy"), set("a", "abc"),
			setMaxValueSize(1<<20), set("a", "0123456789abcdefghij"), get("a"), drain(),
		),
		"custom-validator": encodeOps(with(func(c *config) { c.validator = true }),
			set("", "empty key"), set("a b", "space"), set("x\xff", "bad utf-8"), set(k1025, "long"),
			set("b", "refused"), get("b:c"), list(""), get(""), del("a b"), incr("x\xff", 1), drain(),
		),
		"overwrite-timers": encodeOps(with(func(c *config) { c.shards = 1 }),
			setTTL("a", "x", 5*ms), set("a", "y"), advance(10*ms), get("a"), ttlOf("a"),
			setTTL("b", "x", 5*ms), setTTL("b", "y", time.Hour), advance(10*ms), ttlOf("b"),
			setTTL("a/1", "x", time.Hour), setTTL("a/1", "x", 5*ms), advance(10*ms),
			setTTL("ab", "1", 5*ms), incr("ab", 1), ttlOf("ab"), advance(10*ms), get("ab"),
			setTTL("a/2", "1", 5*ms), casCurrent("a/2", "2"), ttlOf("a/2"), advance(10*ms),
			setTTL("b:c", "1", 5*ms), del("b:c"), advance(10*ms), setTTL("é", "1", 64*ms),
			setTTL("é", "2", 65*ms), advance(64*ms), advance(ms), drain(),
		),
		// Values past 24 bytes: every read returns them whole, events carry
		// them whole, and CompareAndSwap and Increment read them whole.
		"long-values": encodeOps(defaultConfig,
			set("a", long(2, "tail")), get("a"), getString("a"), set("a/1", long(3, "\xff")), get("a/1"),
			getString("a/1"), set(k1024, long(7, "end")), get(k1024), list(""), list("a"),
			casValue("a", long(2, "tai"), "no"), casCurrent("a", long(4, "swapped")), get("a"),
			set("ab", long(1, "42")), incr("ab", 1), get("ab"), set("b", long(6, "x")), incr("b", 1),
			setTTL("a/2", long(5, "ttl"), 5*time.Millisecond), viaCtx(get("a/2"), false), drain(),
			advance(10*time.Millisecond), get("a/2"), del(k1024), get(k1024), drain(),
		),
		"mid-tick": encodeOps(with(func(c *config) { c.shards = 4 }),
			advance(ms+500*us), setTTL("a", "x", 1), setTTL("b", "y", 499*us), setTTL("a/1", "z", 500*us),
			advance(499*us), get("b"), advance(1), get("a/1"), list(""), drain(),
			advance(100*time.Second+250*us), setTTL("a", "x", 0), setTTL("ab", "x", 750*us), advance(750*us), drain(),
		),
	}
	return seeds
}

// concurrentSeeds are FuzzConcurrent's seeds: a header and 3-byte
// operations [goroutine<<4|kind] [key] [argument].
func concurrentSeeds() map[string][]byte {
	type cSeedOp struct{ g, kind, key, arg int }
	// repsLog: each goroutine runs its share 1<<repsLog times.
	enc := func(goroutines, shardIdx, maxKeysIdx, repsLog int, ops ...cSeedOp) []byte {
		// header[0]: the shard index in bits 2-3, and low bits that make
		// 2 + header[0]%3 the goroutine count (all 8 bits count there)
		h0 := byte(shardIdx) << 2
		for 2+int(h0)%3 != goroutines {
			h0++
		}
		b := []byte{h0, byte(maxKeysIdx) | byte(repsLog)<<3}
		for _, o := range ops {
			b = append(b, byte(o.g<<4|o.kind), byte(o.key), byte(o.arg))
		}
		want := cConfig{goroutines, cShards[shardIdx], cMaxKeys[maxKeysIdx], 1 << repsLog}
		if c, _ := decodeConcurrent(b); c != want {
			panic(fmt.Sprintf("concurrent seed decodes as %+v, not %+v", c, want))
		}
		return b
	}
	var sameKey, counters, mixed, quota, ttl, expiredOnArrival []cSeedOp
	for i := 0; i < 16; i++ {
		// every goroutine stores k0 already expired (ttl 0): the reaper
		// reclaims it while the others write it
		expiredOnArrival = append(expiredOnArrival, cSeedOp{i % 4, int(cSetWithTTL), 0, 0})
	}
	for i := 0; i < 8; i++ {
		sameKey = append(sameKey, cSeedOp{0, int(cSet), 0, 0}, cSeedOp{1, int(cSet), 0, 0},
			cSeedOp{0, int(cCASRead), 0, 0}, cSeedOp{1, int(cCASRead), 0, 0})
		counters = append(counters, cSeedOp{i % 4, int(cIncrCounter), i % 2, 10 * i},
			cSeedOp{(i + 1) % 4, int(cIncrCounter), 0, 255 - i})
	}
	for k := 0; k < int(numCKinds); k++ {
		mixed = append(mixed, cSeedOp{k % 3, k, k % 4, k}, cSeedOp{(k + 1) % 3, k, 0, 2 * k})
	}
	for i := 0; i < 6; i++ {
		quota = append(quota, cSeedOp{i % 2, int(cSet), i, 0}, cSeedOp{(i + 1) % 2, int(cCASNil), i + 1, 0},
			cSeedOp{i % 2, int(cDelete), i + 2, 0}, cSeedOp{(i + 1) % 2, int(cIncrCounter), i, i})
		ttl = append(ttl, cSeedOp{i % 2, int(cSetWithTTL), i, i}, cSeedOp{(i + 1) % 2, int(cSleep), i, i},
			cSeedOp{i % 2, int(cGet), i, 0}, cSeedOp{(i + 1) % 2, int(cCleanExpired), 0, 0},
			cSeedOp{i % 2, int(cIncrKey), i, i})
	}
	return map[string][]byte{
		"same-key":           enc(2, 0, 7, 3, sameKey...),
		"counters":           enc(4, 3, 6, 3, counters...),
		"every-kind":         enc(3, 2, 2, 2, mixed...),
		"quota":              enc(2, 1, 0, 3, quota...),
		"ttl-and-time":       enc(2, 0, 3, 2, ttl...),
		"expired-on-arrival": enc(4, 0, 7, 7, expiredOnArrival...),
	}
}

var validateKeySeeds = map[string]string{
	"empty": "", "ascii": "user:1/a-b_c.d", "space": "a b", "bad-utf8": "a\xff",
	"max-len": k1024, "too-long": k1025, "letter-titlecase": "ǅ", "number-letter": "Ⅻ",
	"number-other": "²", "other-alphabetic": "a\u0345", "mark-not-alphabetic": "a\u0300",
	"replacement-char": "\ufffd", "nul": "a\x00", "cjk": "数据", "emoji": "a😀",
	"multibyte-at-limit": strings.Repeat("é", 512), "multibyte-over-limit": strings.Repeat("é", 512) + "a",
}

type incrSeed struct {
	stored []byte
	delta  int64
	absent bool
}

var incrementSeeds = map[string]incrSeed{
	"absent":        {nil, 5, true},
	"empty":         {[]byte(""), 1, false},
	"plus":          {[]byte("+5"), 3, false},
	"leading-zeros": {[]byte("007"), -8, false},
	"max-plus-one":  {[]byte("9223372036854775807"), 1, false},
	"min-minus-one": {[]byte("-9223372036854775808"), -1, false},
	"overflowing":   {[]byte("9223372036854775808"), 0, false},
	"sign-only":     {[]byte("-"), 1, false},
	"space":         {[]byte(" 1"), 1, false},
	"underscore":    {[]byte("1_000"), 1, false},
	"hex":           {[]byte("0x10"), 1, false},
	"bad-utf8":      {[]byte("1\xff"), 1, false},
	"min-delta":     {[]byte("-1"), math.MinInt64, false},
	"max-delta":     {[]byte("1"), math.MaxInt64, false},
}

// corpusFile renders values in the "go test fuzz v1" format.
func corpusFile(vals ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
		case int64:
			fmt.Fprintf(&b, "int64(%d)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		default:
			panic(fmt.Sprintf("corpusFile: %T", v))
		}
	}
	return b.Bytes()
}

// seedFiles is every seed file, by path under testdata/fuzz.
func seedFiles() map[string][]byte {
	files := map[string][]byte{}
	for name, b := range opsSeeds() {
		files["FuzzOps/seed-"+name] = corpusFile(b)
	}
	for name, b := range concurrentSeeds() {
		files["FuzzConcurrent/seed-"+name] = corpusFile(b)
	}
	for name, k := range validateKeySeeds {
		files["FuzzValidateKey/seed-"+name] = corpusFile(k)
	}
	for name, s := range incrementSeeds {
		files["FuzzIncrement/seed-"+name] = corpusFile(s.stored, s.delta, s.absent)
	}
	return files
}

func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("SHARDKV_WRITE_SEEDS") == "" {
		t.Skip("set SHARDKV_WRITE_SEEDS=1 to (re)write testdata/fuzz/*/seed-*")
	}
	for path, b := range seedFiles() {
		p := filepath.Join("testdata", "fuzz", path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSeedCorpusUpToDate(t *testing.T) {
	files := seedFiles()
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join("testdata", "fuzz", path))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/fuzz/%s is missing or stale: run SHARDKV_WRITE_SEEDS=1 go test -run TestWriteSeedCorpus ./fuzz", path)
		}
	}
	stale, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "seed-*"))
	for _, p := range stale {
		rel, _ := filepath.Rel(filepath.Join("testdata", "fuzz"), p)
		if _, ok := files[filepath.ToSlash(rel)]; !ok {
			t.Errorf("%s is not a seed in seeds_test.go any more: delete it, or rename it if it is a crasher", p)
		}
	}
}

// readCorpusBytes reads a one-[]byte corpus file.
func readCorpusBytes(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(strings.TrimSpace(string(raw)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s: not a one-[]byte corpus file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestSeedCorpusCoverage runs the checked-in FuzzOps corpus and checks that
// together the inputs reach every operation (plain and Context, live and
// cancelled), every error class, every wheel level (a TTL set there and
// reclaimed from there by the reaper) and every way an expired entry is
// reclaimed.
func TestSeedCorpusCoverage(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzOps", "*"))
	if len(paths) == 0 {
		t.Fatal("no FuzzOps corpus")
	}
	cov := &coverage{seen: map[string]bool{}}
	for _, p := range paths {
		data := readCorpusBytes(t, p)
		t.Run(filepath.Base(p), func(t *testing.T) { runOps(t, data, cov) })
	}
	var want []string
	for k := opGet; k < opCtx; k++ {
		want = append(want, "op "+k.String())
	}
	for _, k := range ctxTable {
		want = append(want, fmt.Sprintf("op %sContext cancelled=false", k), fmt.Sprintf("op %sContext cancelled=true", k))
	}
	for _, r := range []string{
		"ErrInvalidKey from Set", "ErrInvalidKey from Get", "ErrInvalidKey from Increment",
		"ErrInvalidKey from CompareAndSwap", "ErrInvalidKey from Delete", "ErrInvalidKey from TTL",
		"ErrValueTooLarge from Set", "ErrValueTooLarge from SetWithTTL", "ErrValueTooLarge from CompareAndSwap",
		"ErrQuotaExceeded from Set", "ErrQuotaExceeded from SetWithTTL", "ErrQuotaExceeded from Increment",
		"ErrQuotaExceeded from CompareAndSwap", "*StorageError from GetString", "*StorageError from Increment",
		"ErrClosed from Get", "ErrClosed from Set", "ErrClosed from Delete", "ErrClosed from ListKeys",
		"ErrClosed from Increment", "ErrClosed from CompareAndSwap", "ErrClosed from TTL", "ErrClosed from Exists",
		"context.Canceled from Get", "context.Canceled from Set", "context.Canceled from CompareAndSwap",
	} {
		want = append(want, "result "+r)
	}
	levels := []string{"L0", "L1", "L2", "L3", "L4", "L5", "L6", "overflow"}
	for _, l := range append(slices.Clone(levels), "expired") {
		want = append(want, "SetWithTTL at "+l)
	}
	for _, l := range levels {
		want = append(want, "expire by reaper at "+l)
	}
	want = append(want,
		"expire by reaper at expired", "expire by write at L0", "expire by CleanExpired at L0",
		"expire by quota at L0", "a write meets an expired entry", "a key admitted after a quota reclaim",
		"Increment saturates", "LaggedError", "a read returns a value over 24 bytes",
	)
	for _, w := range want {
		if !cov.seen[w] {
			t.Errorf("the FuzzOps corpus never reaches %q", w)
		}
	}
	if t.Failed() || os.Getenv("SHARDKV_SHOW_COVERAGE") != "" {
		var seen []string
		for s := range cov.seen {
			seen = append(seen, s)
		}
		slices.Sort(seen)
		t.Logf("reached: %q", seen)
	}
}
