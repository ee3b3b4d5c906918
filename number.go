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
	if len(b) == 0 {
		return 0, numErr(b, "cannot parse integer from empty string")
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
		return 0, numErr(b, "invalid digit found in string")
	}
	tooBig := "number too large to fit in target type"
	if neg {
		tooBig = "number too small to fit in target type"
	}
	// Accumulate negatively: -9223372036854775808 fits, its positive doesn't.
	var n int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, numErr(b, "invalid digit found in string")
		}
		d := int64(c - '0')
		if n < (math.MinInt64+d)/10 {
			return 0, numErr(b, tooBig)
		}
		n = n*10 - d
	}
	if !neg {
		if n == math.MinInt64 {
			return 0, numErr(b, tooBig)
		}
		n = -n
	}
	return n, nil
}

// numErr is Increment's error for the stored value b. Rust checks UTF-8
// before parsing, so bytes that are not UTF-8 report that whatever else is
// wrong; checking only here keeps the check off the successful path.
func numErr(b, msg string) error {
	if !utf8.ValidString(b) {
		msg = "invalid utf-8"
	}
	return &StorageError{Msg: "invalid number: " + msg}
}
