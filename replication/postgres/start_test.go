package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/replication/postgres/pgtest"
)

// A stopped standby that cannot start says why: a server with a logging
// collector writes the reason to the collector's file, not to pg_ctl's,
// and the error carries the end of both.
func TestStartFailureSaysWhy(t *testing.T) {
	g := pgtest.Start(t, 2, pgtest.Options{Conf: []string{"logging_collector = on", "log_directory = 'log'"}})
	a, b := g.Members[0], g.Members[1]
	mb := member(t, b, zap.NewNop())
	b.Stop()
	// A setting its startup process refuses once the collector runs.
	f, err := os.OpenFile(filepath.Join(b.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nrecovery_target_timeline = '99'\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	err = mb.Follow(context.Background(), a.ReplicationConnInfo)
	t.Logf("Follow: %v", err)
	if err == nil || !strings.Contains(err.Error(), "recovery target timeline 99 does not exist") {
		t.Errorf("Follow = %v; want the server's reason, recovery target timeline 99 does not exist", err)
	}
}
