package announcer

import (
	"testing"

	"github.com/zdt-project/zdt/site"
)

func TestNewlyCarried(t *testing.T) {
	an := func(prefix string, prepends int) site.Announcement {
		return site.Announcement{Service: "db", Prefix: prefix, Prepends: prepends}
	}
	for _, tc := range []struct {
		name        string
		before, now []site.Announcement
		want        bool
	}{
		{"nothing announced", nil, nil, false},
		{"a standby's prefix", nil, []site.Announcement{an("2001:db8:a::/48", 4)}, false},
		{"a takeover", []site.Announcement{an("2001:db8:a::/48", 4)}, []site.Announcement{an("2001:db8:a::/48", 0)}, true},
		{"a move in, a rung below the headroom", []site.Announcement{an("2001:db8:a::/48", 4)}, []site.Announcement{an("2001:db8:a::/48", 1)}, true},
		{"already carried, now at the headroom", []site.Announcement{an("2001:db8:a::/48", 0)}, []site.Announcement{an("2001:db8:a::/48", 2)}, false},
		{"stepping back", []site.Announcement{an("2001:db8:a::/48", 2)}, []site.Announcement{an("2001:db8:a::/48", 6)}, false},
		{"a new prefix, carried at once", []site.Announcement{an("203.0.113.0/26", 2)}, []site.Announcement{an("203.0.113.0/26", 2), an("2001:db8:a::/48", 2)}, true},
	} {
		if got := newlyCarried(tc.before, tc.now, 2); got != tc.want {
			t.Errorf("%s: newlyCarried = %t, want %t", tc.name, got, tc.want)
		}
	}
}
