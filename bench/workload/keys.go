// Package workload holds the key sets, key distributions and workloads that
// the go test benchmarks (bench/*_test.go) and cmd/kvbench share, and the
// runners kvbench times them with: so both measure exactly the same code.
package workload

import (
	"math"
	"math/rand"
	"strconv"
	"strings"
)

// ValueSize is the length of every value written.
const ValueSize = 64

// OrderLen is the length of a precomputed key order (a power of two): each
// goroutine walks it from its own offset.
const OrderLen = 1 << 20

// ZipfS is the skew of the zipfian key choice (as the root package's
// in-package benchmarks).
const ZipfS = 1.01

// KeyWidth is the number of digits in the keys of an n-key set: at least 6
// ("user:000123"), more when n needs them.
func KeyWidth(n int) int {
	return max(6, len(strconv.Itoa(max(n-1, 0))))
}

// Key returns the i-th key of a set of width digits, as a new string.
func Key(i, width int) string {
	var buf [48]byte
	var dbuf [20]byte
	b := append(buf[:0], "user:"...)
	d := strconv.AppendInt(dbuf[:0], int64(i), 10)
	for range width - len(d) {
		b = append(b, '0')
	}
	b = append(b, d...)
	return string(b)
}

// Keys returns the n keys user:000000 ... of an n-key set.
func Keys(n int) []string {
	w := KeyWidth(n)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = Key(i, w)
	}
	return keys
}

// Dist is a key distribution.
type Dist string

// The distributions.
const (
	Zipf    Dist = "zipf"
	Uniform Dist = "uniform"
)

// Order returns OrderLen key indices in [0, n) drawn from dist with a fixed
// seed. Zipf ranks are scattered over the key set by a random permutation,
// so hot keys are not neighbours.
func Order(n int, dist Dist, seed int64) []int32 {
	rng := rand.New(rand.NewSource(seed))
	order := make([]int32, OrderLen)
	switch dist {
	case Uniform:
		for i := range order {
			order[i] = int32(rng.Intn(n))
		}
	default:
		perm := make([]int32, n)
		for i := range perm {
			perm[i] = int32(i)
		}
		rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		if n == 1 {
			return order
		}
		z := rand.NewZipf(rng, ZipfS, 1, uint64(n-1))
		for i := range order {
			order[i] = perm[z.Uint64()]
		}
	}
	return order
}

// ListPrefix returns the prefix that selects about 1% of an n-key set,
// and how many keys it selects.
func ListPrefix(n int) (string, int) {
	w := KeyWidth(n)
	target := math.Max(float64(n)/100, 1)
	best, bestCount, bestErr := 0, n, math.Inf(1)
	for z := 0; z <= w; z++ {
		count := min(n, int(math.Pow10(w-z)))
		if e := math.Abs(math.Log(float64(count) / target)); e < bestErr {
			best, bestCount, bestErr = z, count, e
		}
	}
	return "user:" + strings.Repeat("0", best), bestCount
}

// SizeLabel is a short label for a key count: 10k, 1M, 10M, 12345.
func SizeLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// ParseSize reads a key count written as 10000, 10k, 1M or 1m.
func ParseSize(s string) (int, error) {
	s = strings.TrimSpace(s)
	mult := 1
	switch {
	case strings.HasSuffix(s, "k") || strings.HasSuffix(s, "K"):
		mult, s = 1000, s[:len(s)-1]
	case strings.HasSuffix(s, "M") || strings.HasSuffix(s, "m"):
		mult, s = 1_000_000, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, &strconv.NumError{Func: "ParseSize", Num: s, Err: strconv.ErrSyntax}
	}
	return n * mult, nil
}
