package replication

import (
	"math"
	"strconv"
	"time"
)

// FormatBytes prints n in the largest IEC unit that keeps the number at or
// above 1, with at most one decimal: 512 B, 1.5 KiB, 12 MiB. Drivers use it
// so that every size a person reads is printed the same way.
func FormatBytes(n int64) string {
	byteUnits := [...]string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	unit := 0
	for math.Abs(v) >= 1024 && unit < len(byteUnits)-1 {
		v /= 1024
		unit++
	}
	// Round to one decimal; when rounding reaches the next unit (1023.96 KiB),
	// print it in that unit instead of as "1024 KiB".
	v = math.Round(v*10) / 10
	if math.Abs(v) >= 1024 && unit < len(byteUnits)-1 {
		v /= 1024
		unit++
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + byteUnits[unit]
}

// formatSeconds prints a duration given in seconds the way time.Duration
// does, rounded to the millisecond: 42s, 1m30s, 250ms.
func formatSeconds(s float64) string {
	if s > math.MaxInt64/float64(time.Second) {
		return strconv.FormatFloat(s, 'g', 6, 64) + "s"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// pairBytes prints a value and its limit; when rounding would print both the
// same although they differ, it adds the exact byte counts.
func pairBytes(v, limit int64) (string, string) {
	a, b := FormatBytes(v), FormatBytes(limit)
	if a == b && v != limit {
		a += " (" + strconv.FormatInt(v, 10) + " B)"
		b += " (" + strconv.FormatInt(limit, 10) + " B)"
	}
	return a, b
}

// pairSeconds is pairBytes for durations in seconds.
func pairSeconds(v, limit float64) (string, string) {
	a, b := formatSeconds(v), formatSeconds(limit)
	if a == b && v != limit {
		a = strconv.FormatFloat(v, 'g', -1, 64) + "s"
		b = strconv.FormatFloat(limit, 'g', -1, 64) + "s"
	}
	return a, b
}
