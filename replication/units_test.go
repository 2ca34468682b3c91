package replication

import (
	"math"
	"testing"
)

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{1024*1024 - 1, "1 MiB"}, // 1023.999 KiB rounds up into the next unit
		{12 << 20, "12 MiB"},
		{12<<20 + 512<<10, "12.5 MiB"},
		{3 << 30, "3 GiB"},
		{5 << 40, "5 TiB"},
		{math.MaxInt64, "8 EiB"},
		{-1, "-1 B"},
		{-2048, "-2 KiB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestFormatSeconds(t *testing.T) {
	tests := []struct {
		s    float64
		want string
	}{
		{0, "0s"},
		{0.25, "250ms"},
		{42, "42s"},
		{42.5, "42.5s"},
		{90, "1m30s"},
		{1.0004, "1s"},
		{1e30, "1e+30s"},
	}
	for _, tt := range tests {
		if got := formatSeconds(tt.s); got != tt.want {
			t.Errorf("formatSeconds(%v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestPairsShowExactValuesWhenRoundingHidesTheDifference(t *testing.T) {
	a, b := pairBytes(8<<20+1, 8<<20)
	if a != "8 MiB (8388609 B)" || b != "8 MiB (8388608 B)" {
		t.Errorf("pairBytes = %q, %q", a, b)
	}
	a, b = pairBytes(12<<20, 8<<20)
	if a != "12 MiB" || b != "8 MiB" {
		t.Errorf("pairBytes = %q, %q", a, b)
	}
	a, b = pairSeconds(30.0001, 30)
	if a != "30.0001s" || b != "30s" {
		t.Errorf("pairSeconds = %q, %q", a, b)
	}
}
