package drbd

import "strings"

// nonFiniteToNull replaces the bare words nan, inf and infinity (any case,
// with a sign) outside JSON strings by null, so that encoding/json can read
// what C's printf made of a float. Everything else is copied unchanged;
// whether it is valid JSON is for the decoder to say.
func nonFiniteToNull(b []byte) []byte {
	out := make([]byte, 0, len(b))
	inString, escaped := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			out = append(out, c)
			continue
		}
		if !isWordByte(c) {
			out = append(out, c)
			continue
		}
		j := i
		for j < len(b) && isWordByte(b[j]) {
			j++
		}
		word := b[i:j]
		switch strings.ToLower(strings.TrimLeft(string(word), "+-")) {
		case "nan", "inf", "infinity":
			out = append(out, "null"...)
		default:
			out = append(out, word...)
		}
		i = j - 1
	}
	return out
}

// isWordByte reports whether c can be part of a bare JSON word or number.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}
