package softswitch

import (
	"testing"
	"time"
)

func TestDueTimeKeepsOrder(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	link := Link{Delay: 100 * time.Millisecond, Jitter: 20 * time.Millisecond}
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }

	if got, want := dueTime(now, time.Time{}, link, lowest), now.Add(80*time.Millisecond); !got.Equal(want) {
		t.Errorf("least jitter: due %v, want %v", got.Sub(now), want.Sub(now))
	}
	if got, want := dueTime(now, time.Time{}, link, highest), now.Add(120*time.Millisecond); !got.Equal(want) {
		t.Errorf("most jitter: due %v, want %v", got.Sub(now), want.Sub(now))
	}
	// A frame that would overtake the one before it waits for it.
	last := now.Add(115 * time.Millisecond)
	if got := dueTime(now.Add(time.Millisecond), last, link, lowest); !got.Equal(last) {
		t.Errorf("behind a frame due at +115ms: due %v, want +115ms", got.Sub(now))
	}
	// Without jitter the delay is exact and randN is not asked.
	fixed := Link{Delay: 50 * time.Millisecond}
	if got := dueTime(now, time.Time{}, fixed, func(int64) int64 { t.Fatal("randN called"); return 0 }); !got.Equal(now.Add(50 * time.Millisecond)) {
		t.Errorf("no jitter: due %v, want 50ms", got.Sub(now))
	}
}

func TestLinkValidate(t *testing.T) {
	for _, l := range []Link{{}, {Cut: true}, {Delay: time.Second}, {Delay: 100 * time.Millisecond, Jitter: 100 * time.Millisecond}} {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	for _, l := range []Link{{Delay: -1}, {Jitter: time.Millisecond}, {Delay: 10 * time.Millisecond, Jitter: 11 * time.Millisecond}} {
		if err := l.Validate(); err == nil {
			t.Errorf("%+v: no error", l)
		}
	}
}

func TestHasTCPPort(t *testing.T) {
	eth := func(etherType uint16, ip []byte) []byte {
		f := make([]byte, ethHdrLen, ethHdrLen+len(ip))
		f[12], f[13] = byte(etherType>>8), byte(etherType)
		return append(f, ip...)
	}
	v4 := func(proto byte, ihl int, src, dst uint16) []byte {
		ip := make([]byte, ihl*4+20)
		ip[0] = 0x40 | byte(ihl)
		ip[9] = proto
		p := ip[ihl*4:]
		p[0], p[1], p[2], p[3] = byte(src>>8), byte(src), byte(dst>>8), byte(dst)
		return ip
	}
	v6 := func(next byte, src, dst uint16) []byte {
		ip := make([]byte, 60)
		ip[0], ip[6] = 0x60, next
		ip[40], ip[41], ip[42], ip[43] = byte(src>>8), byte(src), byte(dst>>8), byte(dst)
		return ip
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"IPv4 TCP to the port", eth(0x0800, v4(6, 5, 40000, 2380)), true},
		{"IPv4 TCP from the port", eth(0x0800, v4(6, 5, 2380, 40000)), true},
		{"IPv4 TCP with options", eth(0x0800, v4(6, 7, 40000, 2380)), true},
		{"IPv4 TCP, other ports", eth(0x0800, v4(6, 5, 40000, 2379)), false},
		{"IPv4 UDP to the port", eth(0x0800, v4(17, 5, 40000, 2380)), false},
		{"IPv6 TCP to the port", eth(0x86dd, v6(6, 40000, 2380)), true},
		{"IPv6 UDP to the port", eth(0x86dd, v6(17, 40000, 2380)), false},
		{"ARP", eth(0x0806, make([]byte, 28)), false},
		{"IPv4, header longer than the frame", eth(0x0800, append([]byte{0x4f, 0, 0, 0, 0, 0, 0, 0, 0, 6}, make([]byte, 10)...)), false},
		{"IPv4, truncated", eth(0x0800, []byte{0x45, 0}), false},
		{"IPv6, truncated", eth(0x86dd, make([]byte, 20)), false},
	} {
		if got := hasTCPPort(tc.frame, 2380); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
