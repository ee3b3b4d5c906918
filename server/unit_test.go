package server

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		nocase     bool
		want       bool
	}{
		{"*", "", false, false}, // as Redis' stringmatchlen; KEYS/SCAN special-case "*"
		{"*", "abc", false, true},
		{"**", "abc", false, true},
		{"a*", "abc", false, true},
		{"a*", "bac", false, false},
		{"*c", "abc", false, true},
		{"?", "a", false, true},
		{"?", "", false, false},
		{"??", "a", false, false},
		{"h?llo", "hello", false, true},
		{"h?llo", "hllo", false, false},
		{"h*llo", "hllo", false, true},
		{"h*llo", "heeeello", false, true},
		{"h[ae]llo", "hello", false, true},
		{"h[ae]llo", "hallo", false, true},
		{"h[ae]llo", "hillo", false, false},
		{"h[^e]llo", "hallo", false, true},
		{"h[^e]llo", "hello", false, false},
		{"h[a-b]llo", "hbllo", false, true},
		{"h[a-b]llo", "hcllo", false, false},
		{"h[b-a]llo", "hallo", false, true}, // a reversed range
		{`h\*llo`, "h*llo", false, true},
		{`h\*llo`, "hello", false, false},
		{`[\]]`, "]", false, true},
		{`[\]]`, `\`, false, false},
		{"[abc", "a", false, true}, // an unterminated set ends the pattern
		{"[abc", "ab", false, false},
		{"[a-]", "a", false, true}, // "a-]" is the range a..]
		{"[a-]", "-", false, false},
		{`a\`, `a\`, false, true},
		{"HELLO", "hello", true, true},
		{"HELLO", "hello", false, false},
		{"h[A-Z]llo", "hello", true, true},
		{"h[E]llo", "hello", true, true},
		{"*a*b*c*", "aXbXc", false, true},
		{"*a*b", "ab", false, true},
		{"a*b*c", "abd", false, false},
		{"__key*@0__:*", "__keyspace@0__:k", false, true},
		{"__key*@0__:*", "__keyevent@0__:set", false, true},
		{"__key*@0__:*", "__keyspace@1__:k", false, false},
		{"user:[0-9]", "user:7", false, true},
		{"user:[0-9]", "user:x", false, false},
		{"", "", false, true},
		{"", "a", false, false},
		{"a", "", false, false},
		{strings.Repeat("a*", 30) + "b", strings.Repeat("a", 60), false, false}, // no exponential blowup
	} {
		if got := globMatch(tc.pattern, tc.s, tc.nocase); got != tc.want {
			t.Errorf("globMatch(%q, %q, %v) = %v", tc.pattern, tc.s, tc.nocase, got)
		}
	}
}

func TestParseInt(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1": 1, "-1": -1, "123": 123, "9223372036854775807": math.MaxInt64,
		"-9223372036854775808": math.MinInt64,
	} {
		if got, ok := parseInt([]byte(in)); !ok || got != want {
			t.Errorf("parseInt(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-", "-0", "01", "+1", " 1", "1 ", "12a", "1.0", "9223372036854775808",
		"-9223372036854775809", "123456789012345678901", "99999999999999999999"} {
		if _, ok := parseInt([]byte(in)); ok {
			t.Errorf("parseInt(%q) accepted", in)
		}
	}
}

func TestLongDouble(t *testing.T) {
	sum := func(a, b string) string {
		x, xinf, ok1 := parseLongDouble([]byte(a))
		y, yinf, ok2 := parseLongDouble([]byte(b))
		if !ok1 || !ok2 || xinf || yinf {
			t.Fatalf("parse %q %q", a, b)
		}
		x.Add(x, y)
		return formatLongDouble(x)
	}
	for _, tc := range []struct{ a, b, want string }{
		{"10.50", "0.1", "10.6"},
		{"0.1", "0.2", "0.3"},
		{"5.0e3", "2.0e2", "5200"},
		{"0", "1e-5", "0.00001"},
		{"1.5", "-1.5", "0"},
		{"-1.5", "0.5", "-1"},
		{"3", "0x10", "19"},
		{"0", ".5", "0.5"},
		{"0", "5.", "5"},
		{"0", "+1.0e+2", "100"},
		{"1e20", "1", "100000000000000000000"}, // a 64-bit mantissa: 1 is below the ulp
		{"1e18", "1", "1000000000000000001"},
		{"0", "1e-18", "0"}, // below %.17Lf's resolution
		{"-0.0", "0", "0"},
	} {
		if got := sum(tc.a, tc.b); got != tc.want {
			t.Errorf("%s + %s = %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
	for _, in := range []string{"", " 1", "1 ", "abc", "nan", "NaN", "-nan", "1_0", "0b1", "0o7", "--1", "+-1", "1e", "1e5x", strings.Repeat("1", 6000)} {
		if _, _, ok := parseLongDouble([]byte(in)); ok {
			t.Errorf("parseLongDouble(%q) accepted", in)
		}
	}
	for _, in := range []string{"inf", "-inf", "+Inf", "INFINITY", "infinity"} {
		if _, inf, ok := parseLongDouble([]byte(in)); !ok || !inf {
			t.Errorf("parseLongDouble(%q): inf %v ok %v", in, inf, ok)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"10": 10, "1k": 1000, "1kb": 1024, "2mb": 2 << 20, "1GB": 1 << 30, "3m": 3e6, "5b": 5} {
		if got, ok := parseMemory(in); !ok || got != want {
			t.Errorf("parseMemory(%q) = %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-1", "x", "1tb", "mb", strconv.FormatInt(math.MaxInt64, 10) + "gb"} {
		if _, ok := parseMemory(in); ok {
			t.Errorf("parseMemory(%q) accepted", in)
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"", "a b", "\x00\xff", strings.Repeat("k", 4096)} {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q): %v", k, err)
		}
	}
}
