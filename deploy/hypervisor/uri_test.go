package hypervisor

import (
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		uri  string
		want Target
		err  string // a part of the error; empty when none is wanted
	}{
		{uri: "test+unix:///default?socket=/run/zdt/a1.sock",
			want: Target{Network: "unix", Address: "/run/zdt/a1.sock", URI: "test:///default"}},
		{uri: "qemu+unix:///system",
			want: Target{Network: "unix", Address: "/run/libvirt/libvirt-sock", URI: "qemu:///system"}},
		{uri: "qemu:///system",
			want: Target{Network: "unix", Address: "/run/libvirt/libvirt-sock", URI: "qemu:///system"}},
		{uri: "QEMU+UNIX:///system?mode=legacy",
			want: Target{Network: "unix", Address: "/run/libvirt/libvirt-sock", URI: "qemu:///system"}},
		{uri: "qemu:///session?socket=/run/user/1000/libvirt/libvirt-sock",
			want: Target{Network: "unix", Address: "/run/user/1000/libvirt/libvirt-sock", URI: "qemu:///session"}},
		{uri: "qemu+tcp://10.0.0.5/system",
			want: Target{Network: "tcp", Address: "10.0.0.5:16509", URI: "qemu:///system"}},
		{uri: "qemu+tcp://10.0.0.5:16510/system",
			want: Target{Network: "tcp", Address: "10.0.0.5:16510", URI: "qemu:///system"}},
		{uri: "qemu+tcp://[fd00::5]/system",
			want: Target{Network: "tcp", Address: "[fd00::5]:16509", URI: "qemu:///system"}},
		{uri: "qemu+tcp://hv1.a.example/system",
			want: Target{Network: "tcp", Address: "hv1.a.example:16509", URI: "qemu:///system"}},
		{uri: "test+tcp://127.0.0.1:1234/default?name=test:///default",
			want: Target{Network: "tcp", Address: "127.0.0.1:1234", URI: "test:///default"}},

		{uri: "qemu+tls://10.0.0.5/system", err: `transport "tls" is not supported; supported: unix`},
		{uri: "qemu://10.0.0.5/system", err: "no transport means tls"},
		{uri: "qemu+ssh://root@10.0.0.5/system", err: "SASL"},
		{uri: "qemu+ssh://10.0.0.5/system", err: `transport "ssh" is not supported`},
		{uri: "qemu+libssh2://10.0.0.5/system", err: `transport "libssh2" is not supported`},
		{uri: "qemu+ext:///system?command=/bin/x", err: `parameter "command" is not supported`},
		{uri: "qemu+unix://host/system", err: "takes no host"},
		{uri: "qemu+unix:///system?socket=run/x.sock", err: "not an absolute path"},
		{uri: "qemu+unix:///system?mode=direct", err: `mode "direct" is not supported`},
		{uri: "qemu+unix:///system?socket=/a&socket=/b", err: "given once"},
		{uri: "qemu+unix:///system?sokcet=/a", err: `parameter "sokcet" is not supported`},
		{uri: "qemu+tcp://10.0.0.5/system?socket=/a", err: "unix transport only"},
		{uri: "qemu:///session", err: "per-user socket"},
		{uri: "qemu+tcp:///system", err: "needs a host"},
		{uri: "qemu+tcp://10.0.0.5:0/system", err: "not a TCP port"},
		{uri: "qemu+tcp://10.0.0.5:99999/system", err: "not a TCP port"},
		{uri: "qemu+unix://", err: "driver path"},
		{uri: "qemu+unix:///", err: "driver path"},
		{uri: "qemu+unix:///a/../b", err: "driver path"},
		{uri: "/run/libvirt/libvirt-sock", err: "want driver[+transport]"},
		{uri: "qemu:system", err: "want driver[+transport]"},
		{uri: "qemu-x+unix:///system", err: "not a driver name"},
		{uri: "qemu+unix:///system#x", err: "fragment"},
		{uri: "", err: "want driver[+transport]"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := ParseURI(tt.uri)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("ParseURI(%q) = %+v, want an error with %q", tt.uri, got, tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseURI(%q) error %q, want it to contain %q", tt.uri, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURI(%q): %v", tt.uri, err)
			}
			if got != tt.want {
				t.Fatalf("ParseURI(%q) = %+v, want %+v", tt.uri, got, tt.want)
			}
		})
	}
}

func TestParseURIErrorNamesURIWithoutPassword(t *testing.T) {
	_, err := ParseURI("qemu+tcp://admin:s3cret@10.0.0.5/system")
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "10.0.0.5") {
		t.Fatalf("error %q: want the URI without its password", err)
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"test+unix:///default?socket=/run/zdt/a1.sock",
		"qemu+tcp://10.0.0.5:16510/system",
		"qemu+tcp://[fd00::5]/system?name=qemu:///system",
		"qemu:///system",
		"qemu+tls://h/system",
		"%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseURI(s)
		if err != nil {
			return
		}
		switch got.Network {
		case "unix":
			if !strings.HasPrefix(got.Address, "/") {
				t.Fatalf("ParseURI(%q): unix address %q is not absolute", s, got.Address)
			}
		case "tcp":
			if got.Address == "" {
				t.Fatalf("ParseURI(%q): empty tcp address", s)
			}
		default:
			t.Fatalf("ParseURI(%q): network %q", s, got.Network)
		}
		if got.URI == "" {
			t.Fatalf("ParseURI(%q): empty daemon URI", s)
		}
	})
}
