package shardkv

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxKeyLen is the longest key, in bytes, that [ValidateKey] accepts.
const MaxKeyLen = 1024

// asciiKey[b] says whether the byte b is an ASCII byte allowed in a key:
// letters, digits and "-_./:". It is false for bytes >= 0x80, which the
// Unicode path decides. 256 entries, so indexing by a byte needs no bounds
// check.
var asciiKey = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-_./:" {
		t[c] = true
	}
	return t
}()

// ValidateKey reports whether key is a valid key: non-empty, at most
// [MaxKeyLen] bytes of valid UTF-8, every rune alphanumeric or one of
// "-_./:". Alphanumeric is Rust's char::is_alphanumeric, as the reference:
// a Unicode letter, a Unicode number, or Other_Alphabetic. The error wraps
// [ErrInvalidKey] and says what is wrong without quoting the key.
func ValidateKey(key string) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	// ASCII fast path: one table lookup a byte, no decoding.
	for i := 0; i < len(key); i++ {
		if !asciiKey[key[i]] {
			return validateKeyUnicode(key, i)
		}
	}
	return nil
}

// validateKeyUnicode checks key from byte i on, where the ASCII fast path
// stopped.
func validateKeyUnicode(key string, i int) error {
	for i < len(key) {
		c := key[i]
		if c < utf8.RuneSelf {
			if !asciiKey[c] {
				return fmt.Errorf("%w: character %q at byte %d", ErrInvalidKey, rune(c), i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(key[i:])
		if r == utf8.RuneError && size <= 1 {
			return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrInvalidKey, i)
		}
		if !isAlphanumeric(r) {
			return fmt.Errorf("%w: character %q (%U) at byte %d", ErrInvalidKey, r, r, i)
		}
		i += size
	}
	return nil
}

// isAlphanumeric is Rust's char::is_alphanumeric: Alphabetic (letters,
// letter numbers, Other_Alphabetic) or Numeric (the N categories).
func isAlphanumeric(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Other_Alphabetic, r)
}
