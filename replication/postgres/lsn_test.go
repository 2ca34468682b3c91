package postgres

import "testing"

func TestLSN(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0/0", 0, true},
		{"16/B374D848", 0x16_B374D848, true},
		{"FFFFFFFF/FFFFFFFF", 1<<64 - 1, true},
		{"0/5120938", 0x5120938, true},
		{"", 0, false},
		{"0", 0, false},
		{"/1", 0, false},
		{"1/", 0, false},
		{"100000000/0", 0, false},
		{"-1/0", 0, false},
		{"g/0", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseLSN(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLSN(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && FormatLSN(got) != tt.in {
			t.Errorf("FormatLSN(%d) = %s, want %s", got, FormatLSN(got), tt.in)
		}
	}
}
