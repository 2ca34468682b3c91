package postgres

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// What the server logs after a mark is read from pg_ctl's log and from the
// logging collector's file, whichever it went to; what it logged before
// the mark is not read again, and a collector file the server rotated to
// after the mark is read from its start.
func TestLogSince(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "log"), 0o700); err != nil {
		t.Fatal(err)
	}
	m := &Member{dataDir: data, logFile: filepath.Join(data, "startup.log")}
	write := func(name, s string) {
		t.Helper()
		f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	first, second := filepath.Join(data, "log", "first.log"), filepath.Join(data, "log", "second.log")
	setCurrent := func(path string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(data, "current_logfiles"), []byte("stderr "+path+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Before the collector runs: pg_ctl's log only.
	write(m.logFile, "old startup line\n")
	mark := m.markLog()
	write(m.logFile, "new startup line\n")
	if got := m.logSince(mark); got != "new startup line\n" {
		t.Errorf("without a collector: %q, want the new startup line", got)
	}

	// The collector writes to log/first.log (named relative to the data
	// directory, as PostgreSQL does): what it held at the mark is old.
	write(first, "old collector line\n")
	setCurrent("log/first.log")
	mark = m.markLog()
	write(m.logFile, "redirecting log output to logging collector process\n")
	write(first, "FATAL: new collector line")
	got := m.logSince(mark)
	for _, want := range []string{"redirecting log output", "FATAL: new collector line\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("with a collector: %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "old") {
		t.Errorf("with a collector: %q has lines from before the mark", got)
	}

	// The collector rotated to a new file after the mark: all of it is new.
	mark = m.markLog()
	write(first, "last line of the first file\n")
	write(second, "first line of the second file\n")
	setCurrent(second) // an absolute path
	got = m.logSince(mark)
	if !strings.Contains(got, "first line of the second file") {
		t.Errorf("after a rotation: %q lacks the new file's line", got)
	}

	// No collector file named at the mark: a file named later may be an
	// old one that the server appends to, so it is not read.
	if err := os.Remove(filepath.Join(data, "current_logfiles")); err != nil {
		t.Fatal(err)
	}
	mark = m.markLog()
	setCurrent("log/first.log")
	if got := m.logSince(mark); got != "" {
		t.Errorf("no collector at the mark: %q, want nothing", got)
	}

	// Without local control there is nothing to read.
	none := &Member{}
	if got := none.logSince(none.markLog()); got != "" {
		t.Errorf("without local control: %q", got)
	}
}

func TestParseCurrentLogfiles(t *testing.T) {
	got := parseCurrentLogfiles("stderr log/postgresql.log\ncsvlog log/postgresql.csv\njsonlog /var/log/pg.json\nstderr /var/log/other.log\n\ngarbage\n", "/data")
	want := []string{"/data/log/postgresql.log", "/var/log/other.log"}
	if !slices.Equal(got, want) {
		t.Errorf("parseCurrentLogfiles = %q, want %q", got, want)
	}
}
