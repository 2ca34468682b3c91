package postgres

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseLSN parses a write-ahead log position as PostgreSQL prints it
// ("16/B374D848": two hexadecimal halves of a 64-bit byte position), so
// that callers can compare the Position of two members of the same group.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("WAL position %q is not of the form XXXXXXXX/XXXXXXXX", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	return h<<32 | l, nil
}

// FormatLSN prints a write-ahead log position as PostgreSQL does.
func FormatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn))
}
