package shardkv

import (
	"math"
	"unicode/utf8"
)

// parseInt parses a stored value as Rust's i64::from_str (and Go's
// strconv.ParseInt(s, 10, 64)) would: an optional sign, then one or more
// ASCII digits, nothing else. It does not allocate unless it fails; its
// errors carry Rust's messages.
func parseInt(b string) (int64, error) {
	if !utf8.ValidString(b) {
		return 0, &StorageError{Msg: "invalid number: invalid utf-8"}
	}
	if len(b) == 0 {
		return 0, &StorageError{Msg: "invalid number: cannot parse integer from empty string"}
	}
	neg := false
	digits := b
	switch b[0] {
	case '+':
		digits = b[1:]
	case '-':
		neg, digits = true, b[1:]
	}
	if len(digits) == 0 {
		return 0, &StorageError{Msg: "invalid number: invalid digit found in string"}
	}
	// Accumulate negatively: -9223372036854775808 fits, its positive doesn't.
	var n int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, &StorageError{Msg: "invalid number: invalid digit found in string"}
		}
		d := int64(c - '0')
		if n < (math.MinInt64+d)/10 {
			if neg {
				return 0, &StorageError{Msg: "invalid number: number too small to fit in target type"}
			}
			return 0, &StorageError{Msg: "invalid number: number too large to fit in target type"}
		}
		n = n*10 - d
	}
	if !neg {
		if n == math.MinInt64 {
			return 0, &StorageError{Msg: "invalid number: number too large to fit in target type"}
		}
		n = -n
	}
	return n, nil
}
