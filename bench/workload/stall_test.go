package workload

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func TestValueOfRank(t *testing.T) {
	h := hdrhistogram.New(1, int64(time.Minute), 3)
	// 1000 values of 2 µs, 100 of 30 µs, 10 of 200 µs, 1 of 5 ms.
	for v, n := range map[int64]int{2000: 1000, 30_000: 100, 200_000: 10, 5_000_000: 1} {
		for range n {
			record(h, v)
		}
	}
	near := func(got, want int64) bool { return got >= want && got <= want+want/500 }
	for _, c := range []struct {
		rank float64
		want int64
	}{
		{0, 5_000_000}, {0.3, 5_000_000}, {1, 5_000_000}, {1.2, 200_000},
		{11, 200_000}, {11.5, 30_000}, {111, 30_000}, {112, 2000}, {1111, 2000},
		{1112, 0}, {1e6, 0},
	} {
		if got := valueOfRank(h, c.rank); !near(got, c.want) || (c.want == 0) != (got == 0) {
			t.Errorf("valueOfRank(%v) = %d, want %d", c.rank, got, c.want)
		}
	}
}

func TestMeasureStallFloorSpinsAndScales(t *testing.T) {
	f := MeasureStallFloor(200*time.Millisecond, 1_000_000, 50*time.Millisecond)
	if f.SpinSeconds < 0.05 || f.SpinSeconds > 0.2 {
		t.Fatalf("spun %.3f s, want 0.05 s (the limit)", f.SpinSeconds)
	}
	// 1M operations timed for 200 ms: 100 above the p99.99; the spin ran a
	// quarter of that, so 25 of its gaps.
	if f.Rank < 24 || f.Rank > 26 {
		t.Fatalf("rank %.2f, want 25 (100 scaled by 50/200 ms)", f.Rank)
	}
	if f.Max < f.P9999 || f.Over1ms > f.Over50us || f.Over50us > f.Over20us || f.Over20us > f.Gaps {
		t.Fatalf("inconsistent floor %+v", f)
	}
}
