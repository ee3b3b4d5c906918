package shardkv_test

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/shardkv/shardkv"
)

func TestValidateKey(t *testing.T) {
	cases := []struct {
		name  string
		key   string
		valid bool
	}{
		{"lower", "abcxyz", true},
		{"upper", "ABCXYZ", true},
		{"digits", "0123456789", true},
		{"allowed punctuation", "-_./:", true},
		{"path-like", "user/42:profile.v1-x_y", true},
		{"single char", "a", true},
		{"single dash", "-", true},
		{"space", "bad key", false},
		{"leading space", " a", false},
		{"trailing space", "a ", false},
		{"at", "a@b", false},
		{"empty", "", false},
		{"tab", "a\tb", false},
		{"newline", "a\n", false},
		{"nul", "a\x00b", false},
		{"del", "a\x7f", false},
		{"backslash", `a\b`, false},
		{"plus", "a+b", false},
		{"comma", "a,b", false},
		{"star", "a*", false},
		{"hash", "#a", false},
		{"question", "a?", false},
		{"tilde", "~a", false},
		{"equals", "a=b", false},
		{"quote", `a"b`, false},
		{"percent", "a%20b", false},
		{"exactly 1024 bytes", strings.Repeat("k", 1024), true},
		{"1025 bytes", strings.Repeat("k", 1025), false},
		{"1022 + é (2 bytes) = 1024", strings.Repeat("k", 1022) + "é", true},
		{"1023 + é (2 bytes) = 1025", strings.Repeat("k", 1023) + "é", false},
		{"1021 + 日 (3 bytes) = 1024", strings.Repeat("k", 1021) + "日", true},
		{"1022 + 日 (3 bytes) = 1025", strings.Repeat("k", 1022) + "日", false},
		{"1023 + 日 (3 bytes) = 1026", strings.Repeat("k", 1023) + "日", false},
		{"341 × 日 = 1023 bytes", strings.Repeat("日", 341), true},
		{"342 × 日 = 1026 bytes", strings.Repeat("日", 342), false},
		{"256 × 𝒜 (4 bytes) = 1024", strings.Repeat("𝒜", 256), true},
		{"257 × 𝒜 = 1028", strings.Repeat("𝒜", 257), false},
		{"latin accents", "héllo", true},
		{"CJK", "日本語", true},
		{"Greek", "Ελλάδα", true},
		{"Cyrillic", "привет", true},
		{"Arabic-Indic digit (Nd)", "٣", true},
		{"Roman numeral (Nl)", "Ⅻ", true},
		{"superscript two (No)", "x²", true},
		{"vulgar fraction (No)", "½", true},
		{"Devanagari with visarga (Other_Alphabetic Mc)", "नमः", true},
		{"visarga alone", "ः", true},
		{"Hebrew", "שלום", true},
		{"title-case letter (Lt)", "ǅ", true},
		{"modifier letter (Lm)", "ʰ", true},
		{"emoji", "😀", false},
		{"emoji in key", "key😀", false},
		{"combining acute (Mn, not Other_Alphabetic)", "e\u0301", false},
		{"zero-width joiner", "a\u200db", false},
		{"no-break space", "a\u00a0b", false},
		{"ideographic space", "a\u3000b", false},
		{"fullwidth solidus", "a／b", false},
		{"replacement character itself", "\uFFFD", false},
		{"replacement character in key", "ab\uFFFDcd", false},
		{"invalid byte", "\xff", false},
		{"invalid byte after ascii", "abc\xff", false},
		{"truncated 日", "\xe6\x97", false},
		{"truncated 日 after letters", "日本\xe6\x97", false},
		{"overlong slash", "\xc0\xaf", false},
		{"UTF-16 surrogate encoded", "\xed\xa0\x80", false},
		{"continuation byte alone", "\x80", false},
		{"beyond U+10FFFF", "\xf4\x90\x80\x80", false},
		{"private use", "\ue000", false},
		{"currency", "$5", false},
		{"math symbol", "a∑", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := shardkv.ValidateKey(tc.key)
			if tc.valid {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, shardkv.ErrInvalidKey)
			}
			require.Equal(t, tc.valid, refKeyRule(tc.key), "the table disagrees with the written-out rule")
		})
	}
}

// The store applies ValidateKey to the keyed operations.
func TestValidateKey_StoreUsesIt(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	for _, key := range []string{"", "bad key", "😀", "\xff", strings.Repeat("k", 1025)} {
		require.ErrorIs(t, s.Set(key, nil), shardkv.ErrInvalidKey, "%q", key)
		_, _, err := s.Get(key)
		require.ErrorIs(t, err, shardkv.ErrInvalidKey, "%q", key)
	}
	for _, key := range []string{"日本語", "नमः", strings.Repeat("k", 1024)} {
		require.NoError(t, s.Set(key, []byte("v")), "%q", key)
		require.True(t, s.Exists(key))
	}
}

// refKeyRule is the reference store's validate_key
// (/work/shared/reference/kvstore.rs), written out from the Rust source and
// independently of key.go, so that a mistake in key.go's expression cannot
// be copied into its own check:
//
//	!key.is_empty() && key.len() <= 1024 &&
//	key.chars().all(|c| c.is_alphanumeric() || "-_./:".contains(c))
//
// key.len() counts bytes. A Rust &str is valid UTF-8 by construction; a Go
// string need not be, and one that is not is refused. For ASCII the allowed
// set is listed byte by byte (refASCIIAllowed). Beyond ASCII,
// char::is_alphanumeric is Alphabetic || Numeric: Alphabetic is the Unicode
// derived property (Lu, Ll, Lt, Lm, Lo, Nl and Other_Alphabetic, with
// Other_Lowercase and Other_Uppercase through Lowercase and Uppercase) and
// Numeric the categories Nd, Nl and No: refAlphanumeric lists those tables.
func refKeyRule(key string) bool {
	if key == "" || len(key) > 1024 {
		return false
	}
	runes := []rune(key) // each invalid byte becomes U+FFFD,
	if string(runes) != key {
		return false // so the round trip differs: not UTF-8
	}
	for _, r := range runes {
		var ok bool
		if r < 0x80 {
			ok = strings.IndexByte(refASCIIAllowed, byte(r)) >= 0
		} else {
			ok = unicode.In(r, refAlphanumeric...)
		}
		if !ok {
			return false
		}
	}
	return true
}

// refASCIIAllowed is every ASCII byte a key may hold, written out.
const refASCIIAllowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz" + "0123456789" + "-_./:"

// refAlphanumeric is Rust's char::is_alphanumeric as Unicode tables.
var refAlphanumeric = []*unicode.RangeTable{
	unicode.Lu, unicode.Ll, unicode.Lt, unicode.Lm, unicode.Lo, unicode.Nl, // Alphabetic: letters, letter numbers
	unicode.Other_Alphabetic, unicode.Other_Lowercase, unicode.Other_Uppercase, // and its other contributors
	unicode.Nd, unicode.No, // Numeric (Nl is above)
}

// TestRefKeyRule_ASCII: the reference's two halves agree on ASCII: the
// listed bytes are exactly the ASCII runes its Unicode tables call
// alphanumeric, plus "-_./:". (A check of the reference, not of key.go.)
func TestRefKeyRule_ASCII(t *testing.T) {
	for b := range 0x80 {
		listed := strings.IndexByte(refASCIIAllowed, byte(b)) >= 0
		byTables := unicode.In(rune(b), refAlphanumeric...) || strings.IndexByte("-_./:", byte(b)) >= 0
		if listed != byTables {
			t.Errorf("byte %#x %q: listed %v, by the tables %v", b, rune(b), listed, byTables)
		}
	}
}

// ValidateKey agrees with refKeyRule on random strings: ASCII, random runes
// of every plane, stray and truncated bytes, lengths around the limit.
func TestValidateKey_MatchesRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 11))
	pieces := []func() string{
		func() string { return string(rune(rng.IntN(128))) },                                           // any ASCII
		func() string { return string("-_./:aZ09"[rng.IntN(9)]) },                                      // allowed ASCII
		func() string { return string(rune(rng.IntN(0x800))) },                                         // 2-byte range
		func() string { return string(rune(rng.IntN(0x10000))) },                                       // BMP (surrogates become U+FFFD)
		func() string { return string(rune(rng.IntN(utf8.MaxRune + 1))) },                              // any code point
		func() string { return string([]byte{byte(rng.IntN(256))}) },                                   // a stray byte
		func() string { s := string(rune(0x800 + rng.IntN(0xF000))); return s[:1+rng.IntN(len(s)-1)] }, // truncated
		func() string { return []string{"ः", "٣", "日", "é", "😀", "\uFFFD", "\u0301"}[rng.IntN(7)] },
	}
	valid, invalid := 0, 0
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		n := rng.IntN(12)
		if rng.IntN(20) == 0 {
			n = 250 + rng.IntN(30) // around 1024 bytes when the pieces are multi-byte
		}
		if rng.IntN(20) == 0 {
			b.WriteString(strings.Repeat("k", 1018+rng.IntN(6)))
		}
		for j := 0; j < n; j++ {
			b.WriteString(pieces[rng.IntN(len(pieces))]())
		}
		key := b.String()
		want := refKeyRule(key)
		err := shardkv.ValidateKey(key)
		if want {
			valid++
			require.NoError(t, err, "key %q (len %d)", key, len(key))
		} else {
			invalid++
			require.ErrorIs(t, err, shardkv.ErrInvalidKey, "key %q (len %d)", key, len(key))
		}
	}
	// The generator reaches both sides of the rule.
	require.Greater(t, valid, 1000)
	require.Greater(t, invalid, 1000)
}

// Every rune, alone and between ASCII letters, against the rule.
func TestValidateKey_EveryRune(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue // not encodable
		}
		s := string(r)
		want := refKeyRule(s)
		if got := shardkv.ValidateKey(s) == nil; got != want {
			t.Fatalf("ValidateKey(%q %U) valid=%v, rule says %v", s, r, got, want)
		}
		if r%7 == 0 {
			if got := shardkv.ValidateKey("a"+s+"b") == nil; got != want {
				t.Fatalf("ValidateKey(a%qb %U) valid=%v, rule says %v", s, r, got, want)
			}
		}
	}
}

func TestValidateKey_ErrorDoesNotQuoteKey(t *testing.T) {
	// The error wraps ErrInvalidKey and starts with its text.
	for _, key := range []string{"", "bad key", "\xff", strings.Repeat("k", 2000)} {
		err := shardkv.ValidateKey(key)
		require.True(t, errors.Is(err, shardkv.ErrInvalidKey))
		require.True(t, strings.HasPrefix(err.Error(), shardkv.ErrInvalidKey.Error()), err.Error())
	}
}

func BenchmarkValidateKey(b *testing.B) {
	keys := map[string]string{
		"ascii-short":   "user:42",
		"ascii-64":      strings.Repeat("user/42.", 8),
		"ascii-1024":    strings.Repeat("k", 1024),
		"unicode-short": "日本語:ユーザー",
		"unicode-mixed": "user/" + strings.Repeat("héllo-", 10),
		"invalid-late":  strings.Repeat("k", 63) + " ",
	}
	for _, name := range []string{"ascii-short", "ascii-64", "ascii-1024", "unicode-short", "unicode-mixed", "invalid-late"} {
		key := keys[name]
		b.Run(name+"/"+strconv.Itoa(len(key)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(key)))
			for b.Loop() {
				_ = shardkv.ValidateKey(key)
			}
		})
	}
}
