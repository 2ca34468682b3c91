package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/replication/postgres"
	"github.com/zdt-project/zdt/replication/reconciler"
	"github.com/zdt-project/zdt/site/config"
)

// probeTimeout bounds the probe of one replication member.
const probeTimeout = 3 * time.Second

// probeMembers connects to every PostgreSQL member of the config and writes
// a warning for each setting that keeps it from taking part in failover
// fully (above all: neither wal_log_hints nor data checksums, so pg_rewind
// cannot turn a former primary into a standby), and a note for each member
// it cannot reach. It returns the number of warnings; nothing it finds is a
// config problem (the file is valid), so the exit status stays 0.
func probeMembers(ctx context.Context, w io.Writer, path string, cfg *config.Cluster) int {
	warnings := 0
	for _, g := range cfg.Replication {
		if g.Driver != config.DriverPostgres {
			continue
		}
		for _, m := range g.Members {
			where := fmt.Sprintf("%s: replication group %s, member at site %s", path, g.Name, m.Site)
			member, err := postgres.New(postgres.Config{Name: m.Site, ConnString: reconciler.WithPassword(m.Conn, m.Password),
				ReplicationConnInfo: m.ReplicationConn, Log: zap.NewNop(), QueryTimeout: probeTimeout})
			if err != nil {
				fmt.Fprintf(w, "warning: %s: %v\n", where, err)
				warnings++
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			s, err := member.Settings(pctx)
			cancel()
			member.Close()
			if err != nil {
				fmt.Fprintf(w, "note: %s: not checked, cannot reach it: %v\n", where, err)
				continue
			}
			for _, p := range s.Problems() {
				fmt.Fprintf(w, "warning: %s: %s\n", where, p)
				warnings++
			}
		}
	}
	return warnings
}
