package postgres

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestParseConnInfo(t *testing.T) {
	tests := []struct {
		in   string
		want connInfo
		err  string
	}{
		{in: "", want: nil},
		{in: "host=h port=5432", want: connInfo{{"host", "h"}, {"port", "5432"}}},
		{in: "  host = h\tuser=u  ", want: connInfo{{"host", "h"}, {"user", "u"}}},
		{in: `password='it\'s a \\ secret' host=h`, want: connInfo{{"password", `it's a \ secret`}, {"host", "h"}}},
		{in: `password=a\ b`, want: connInfo{{"password", "a b"}}},
		{in: `password=ab\`, want: connInfo{{"password", "ab"}}},
		{in: "host= port=1", want: connInfo{{"host", "port=1"}}},
		{in: "host='' port=1", want: connInfo{{"host", ""}, {"port", "1"}}},
		{in: "host=a host=b", want: connInfo{{"host", "b"}}},
		{in: "host", err: `missing "=" after "host"`},
		{in: "=x", err: `"=" without a keyword`},
		{in: "host='h", err: "unterminated quoted value"},
		{in: `host='h\'`, err: "unterminated quoted value"},
		{in: "host=a\x00", err: "NUL"},
		{in: "postgresql://u@h/db", err: "is a URI"},
	}
	for _, tt := range tests {
		got, err := parseConnInfo(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseConnInfo(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseConnInfo(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestConnInfoEdits(t *testing.T) {
	ci, err := parseConnInfo("host=h port=5 password=p application_name=x")
	if err != nil {
		t.Fatal(err)
	}
	ci = ci.with("application_name", "b").with("dbname", "postgres").without("password")
	if got, want := ci.String(), `host='h' port='5' application_name='b' dbname='postgres'`; got != want {
		t.Errorf("edited = %s, want %s", got, want)
	}
	other, _ := parseConnInfo("port=5 host=h application_name=b user=")
	if !sameSender(ci, other) {
		t.Error("sameSender: same host, port, user and name are not the same sender")
	}
	if sameSender(ci, other.with("port", "6")) {
		t.Error("sameSender: another port is the same sender")
	}
	if got := redact("host=h password='s3cret'"); strings.Contains(got, "s3cret") {
		t.Errorf("redact = %s", got)
	}
}

func TestQuoting(t *testing.T) {
	if got, want := quoteConfigValue(`a'b\c`), `'a''b\\c'`; got != want {
		t.Errorf("quoteConfigValue = %s, want %s", got, want)
	}
	if got, want := quoteLiteral(`a'b\c`), `E'a\'b\\c'`; got != want {
		t.Errorf("quoteLiteral = %s, want %s", got, want)
	}
	if got, want := quoteIdent(`a"b`), `"a""b"`; got != want {
		t.Errorf("quoteIdent = %s, want %s", got, want)
	}
}

func FuzzConnInfo(f *testing.F) {
	for _, s := range []string{"host=h port=5432", `password='it\'s'`, `a=\\ b= c='' d=e\`, "x = 'y z'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ci, err := parseConnInfo(s)
		if err != nil {
			return
		}
		again, err := parseConnInfo(ci.String())
		if err != nil || !slices.Equal(ci, again) {
			t.Fatalf("round trip of %q: %q gives %v, %v; want %v", s, ci.String(), again, err, ci)
		}
	})
}

func TestSyncStandbyNames(t *testing.T) {
	tests := []struct {
		standbys []string
		num      int
		want     string
		err      bool
	}{
		{nil, 0, "", false},
		{[]string{"b", "c"}, 1, `ANY 1 ("b", "c")`, false},
		{[]string{`we"ird`}, 1, `ANY 1 ("we""ird")`, false},
		{[]string{"b"}, 0, "", true},
		{[]string{"b"}, 2, "", true},
		{[]string{""}, 1, "", true},
	}
	for _, tt := range tests {
		got, err := syncStandbyNames(tt.standbys, tt.num)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("syncStandbyNames(%q, %d) = %q, %v", tt.standbys, tt.num, got, err)
		}
	}
}

func TestParseHistory(t *testing.T) {
	got, err := parseHistory("1\t0/5120938\tno recovery target specified\n\n2\t0/6000000\tno recovery target specified\n")
	want := []timelineSwitch{{1, 0x5120938}, {2, 0x6000000}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseHistory = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"1\n", "x\t0/1\n", "1\tzz\n"} {
		if _, err := parseHistory(bad); err == nil {
			t.Errorf("parseHistory(%q) accepted it", bad)
		}
	}
}

// The controller's PG* environment (a PGPASSWORD left in the shell that
// started it) decides nothing about the connections to other members: not
// the driver's own, not those of the programs it runs.
func TestWithoutEnvironment(t *testing.T) {
	passfile := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(passfile, []byte("*:*:*:zdt_repl:fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", "fromenv")
	t.Setenv("PGPORT", "6543")
	t.Setenv("PGSSLMODE", "require")
	for _, tt := range []struct {
		conninfo, password string
		port               uint16
	}{
		{"host=127.0.0.1 user=zdt_repl passfile=" + passfile, "fromfile", 5432},
		{"host=127.0.0.1 port=15432 user=zdt_repl password=inline passfile=" + passfile, "inline", 15432},
		{"host=127.0.0.1 port=15432 user=other passfile=" + passfile, "", 15432},
	} {
		ci, err := parseConnInfo(tt.conninfo)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := pgconn.ParseConfig(withoutEnvironment(ci).String())
		if err != nil {
			t.Fatalf("%s: %v", tt.conninfo, err)
		}
		if cfg.Password != tt.password || cfg.Port != tt.port || cfg.TLSConfig == nil || len(cfg.Fallbacks) != 1 {
			t.Errorf("%s: password %q, port %d, TLS %v with %d fallbacks; want password %q, port %d and sslmode prefer (TLS, then plain)",
				tt.conninfo, cfg.Password, cfg.Port, cfg.TLSConfig != nil, len(cfg.Fallbacks), tt.password, tt.port)
		}
	}
	env := withoutLibpqEnv([]string{"PATH=/bin", "PGPASSWORD=x", "HOME=/root", "PGPORT=1", "PGDATA=/d", "LANG=C"})
	if want := []string{"PATH=/bin", "HOME=/root", "LANG=C"}; !slices.Equal(env, want) {
		t.Errorf("withoutLibpqEnv = %q, want %q", env, want)
	}
}
