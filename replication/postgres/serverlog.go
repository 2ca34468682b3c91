package postgres

import (
	"io"
	"os"
	"path/filepath"
	"strings"
)

// logMark is where the server's logs ended at one moment: what it logs
// after that is read by logDivergence. A server writes to the file that
// pg_ctl start gives it (Config.LogFile) until its logging collector runs,
// if it has one (logging_collector = on); from then on to the collector's
// file, which current_logfiles in the data directory names. Both count.
type logMark struct {
	// sizes of the files by path, at the mark.
	sizes map[string]int64
	// collectorKnown: current_logfiles named the collector's file at the
	// mark. A collector file that was not named then (the log rotated
	// since) is new, and read from its start; without a collector file at
	// the mark there is no telling what in a file it names later is new,
	// and it is not read.
	collectorKnown bool
}

// markLog marks where the server's logs end now. Without local control
// there is nothing to read: the mark reads nothing.
func (m *Member) markLog() logMark {
	mark := logMark{sizes: map[string]int64{}}
	if m.logFile != "" {
		mark.sizes[m.logFile] = fileSize(m.logFile)
	}
	for _, f := range m.collectorFiles() {
		mark.sizes[f] = fileSize(f)
		mark.collectorKnown = true
	}
	return mark
}

// logSince returns what the server logged after the mark, in its pg_ctl
// log and in its logging collector's file: up to 4 MiB of each.
func (m *Member) logSince(mark logMark) string {
	var b strings.Builder
	read := func(name string, from int64) {
		f, err := os.Open(name)
		if err != nil {
			return
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Size() < from {
			from = 0 // truncated since the mark: all of it is new
		}
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return
		}
		data, _ := io.ReadAll(io.LimitReader(f, 4<<20))
		b.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	if m.logFile != "" {
		if from, ok := mark.sizes[m.logFile]; ok {
			read(m.logFile, from)
		}
	}
	for _, f := range m.collectorFiles() {
		if f == m.logFile {
			continue
		}
		from, ok := mark.sizes[f]
		switch {
		case ok:
			read(f, from)
		case mark.collectorKnown:
			read(f, 0)
		}
	}
	return b.String()
}

// collectorFiles are the files the server's logging collector writes to
// now, as current_logfiles in the data directory names them (relative
// paths are the data directory's); none without a collector.
func (m *Member) collectorFiles() []string {
	if m.dataDir == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(m.dataDir, "current_logfiles"))
	if err != nil {
		return nil
	}
	return parseCurrentLogfiles(string(data), m.dataDir)
}

// parseCurrentLogfiles reads current_logfiles: a line per log destination,
// "stderr log/postgresql.log". Only the text destination (stderr) counts:
// csvlog and jsonlog carry the same messages.
func parseCurrentLogfiles(s, dataDir string) []string {
	var out []string
	for line := range strings.Lines(s) {
		dest, path, ok := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		if !ok || dest != "stderr" || path == "" {
			continue
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dataDir, path)
		}
		out = append(out, path)
	}
	return out
}

// fileSize is a file's size; 0 when it is not there (all of it is new).
func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}
