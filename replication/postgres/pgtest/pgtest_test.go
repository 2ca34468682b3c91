package pgtest_test

import (
	"context"
	"syscall"
	"testing"

	"github.com/zdt-project/zdt/replication/postgres/pgtest"
)

func TestStartThree(t *testing.T) {
	g := pgtest.Start(t, 3, pgtest.Options{})
	ctx := context.Background()
	c := g.Members[0].Connect(ctx)
	var names []string
	rows, err := c.Query(ctx, `SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if len(names) != 2 || names[0] != "b" || names[1] != "c" {
		t.Errorf("streaming standbys = %v, want [b c]", names)
	}
	for _, s := range g.Members[1:] {
		var recovery bool
		if err := s.Connect(ctx).QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil || !recovery {
			t.Errorf("%s: in recovery = %v, %v; want a standby", s.Name, recovery, err)
		}
	}
	// Kill signals the whole server through its process group.
	for _, s := range g.Members {
		pid := s.Pid()
		if pg, err := syscall.Getpgid(pid); err != nil || pg != pid {
			t.Errorf("%s: postmaster %d is in process group %d (%v), want its own", s.Name, pid, pg, err)
		}
	}
	t.Logf("3 members up in %s", g.Took)
}
