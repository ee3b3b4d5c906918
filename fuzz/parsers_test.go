package fuzz

import (
	"context"
	"errors"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/shardkv/shardkv"
)

// keyRule is the contract's key rule, written independently of
// shardkv.ValidateKey: a key is 1 to 1024 bytes of valid UTF-8 and every
// rune is alphanumeric in Rust's sense (char::is_alphanumeric: the
// Alphabetic property, i.e. letters, Nl and Other_Alphabetic, or the
// Numeric categories Nd, Nl, No) or one of "-_./:".
func keyRule(k string) bool {
	if len(k) == 0 || len(k) > 1024 || !utf8.ValidString(k) {
		return false
	}
	for _, r := range k {
		if strings.ContainsRune("-_./:", r) {
			continue
		}
		if !unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Lm, unicode.Lo,
			unicode.Nl, unicode.Nd, unicode.No, unicode.Other_Alphabetic) {
			return false
		}
	}
	return true
}

// FuzzValidateKey checks ValidateKey against keyRule, and that a store
// refuses exactly the keys ValidateKey refuses, with ErrInvalidKey.
func FuzzValidateKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, key string) {
		want := keyRule(key)
		err := shardkv.ValidateKey(key)
		if (err == nil) != want {
			t.Fatalf("ValidateKey(%+q) = %v; the rule says valid=%v", key, err, want)
		}
		if err != nil && !errors.Is(err, shardkv.ErrInvalidKey) {
			t.Fatalf("ValidateKey(%+q) = %v, which does not wrap ErrInvalidKey", key, err)
		}
		s := shardkv.New(shardkv.WithShards(1))
		defer s.Close()
		serr := s.Set(key, []byte("v"))
		if (serr == nil) != want || (serr != nil && !errors.Is(serr, shardkv.ErrInvalidKey)) {
			t.Fatalf("Set(%+q) = %v; the rule says valid=%v", key, serr, want)
		}
		if got := s.Exists(key); got != want {
			t.Fatalf("Exists(%+q) after Set = %v, want %v", key, got, want)
		}
		keys, err := s.ListKeys(key)
		if err != nil || (len(keys) == 1 && keys[0] == key) != want || len(keys) > 1 {
			t.Fatalf("ListKeys(%+q) after Set = %q, %v", key, keys, err)
		}
	})
}

// FuzzIncrement stores arbitrary bytes (or nothing) under a key and
// increments it by an arbitrary delta: the result must be the stored
// decimal integer (as strconv.ParseInt base 10 reads it, which is what
// Rust's i64::from_str accepts) plus delta, saturated at the int64 limits
// and stored as decimal text with one EventSet; anything that is not such
// a number must give a *StorageError and leave the value and the events
// untouched. It must never panic.
func FuzzIncrement(f *testing.F) {
	f.Fuzz(func(t *testing.T, stored []byte, delta int64, absent bool) {
		if len(stored) > shardkv.DefaultMaxValueSize {
			return
		}
		s := shardkv.New(shardkv.WithShards(1))
		defer s.Close()
		sub := s.Subscribe()
		defer sub.Close()
		const k = "n"
		if !absent {
			if err := s.Set(k, stored); err != nil {
				t.Fatalf("Set(%q, %q) = %v", k, stored, err)
			}
		}
		n, err := s.Increment(k, delta)

		var want int64
		numeric := true
		if !absent {
			cur, perr := strconv.ParseInt(string(stored), 10, 64)
			if perr != nil {
				numeric = false
			} else {
				sum := new(big.Int).Add(big.NewInt(cur), big.NewInt(delta))
				switch {
				case sum.IsInt64():
					want = sum.Int64()
				case sum.Sign() > 0:
					want = math.MaxInt64
				default:
					want = math.MinInt64
				}
			}
		} else {
			want = delta
		}

		// Events are compared in full (exactFmt), printed shortened.
		var events, shown []string
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for {
			ev, err := sub.Recv(ctx)
			if err != nil {
				break
			}
			events = append(events, exactFmt.event(ev.Kind, ev.Key, ev.Value))
			shown = append(shown, evString(ev.Kind, ev.Key, ev.Value))
		}
		var wantEvents, wantShown []string
		if !absent {
			wantEvents = append(wantEvents, exactFmt.event(shardkv.EventSet, k, stored))
			wantShown = append(wantShown, evString(shardkv.EventSet, k, stored))
		}
		v, found, gerr := s.Get(k)
		if !numeric {
			var se *shardkv.StorageError
			if !errors.As(err, &se) || !strings.HasPrefix(se.Msg, "invalid number") {
				t.Fatalf("Increment on %q by %d = %d, %v; want a *StorageError \"invalid number: ...\"", stored, delta, n, err)
			}
			if !found || gerr != nil || string(v) != string(stored) {
				t.Fatalf("after a refused Increment, Get = %q, %v, %v; want the value %q left as it was", v, found, gerr, stored)
			}
		} else {
			if err != nil || n != want {
				t.Fatalf("Increment on %q (absent=%v) by %d = %d, %v; want %d", stored, absent, delta, n, err, want)
			}
			if text := strconv.FormatInt(want, 10); !found || gerr != nil || string(v) != text {
				t.Fatalf("after Increment, Get = %q, %v, %v; want %q", v, found, gerr, text)
			}
			text := []byte(strconv.FormatInt(want, 10))
			wantEvents = append(wantEvents, exactFmt.event(shardkv.EventSet, k, text))
			wantShown = append(wantShown, evString(shardkv.EventSet, k, text))
		}
		if !slices.Equal(events, wantEvents) {
			t.Fatalf("events %s, want %s", shown, wantShown)
		}
	})
}
