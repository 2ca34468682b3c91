package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

func TestEventTable(t *testing.T) {
	events := []site.Event{
		{At: opsMS(0), Site: "a", Kind: "op-started", Op: "20261202T031300.000Z-failover-3fa2c1", Subject: "c", Message: "op started"},
		{At: opsMS(340), Site: "a", Kind: "step", Op: "20261202T031300.000Z-failover-3fa2c1", Subject: "c", Message: "site c\nfenced"},
		{At: opsMS(900), Kind: "fence-confirmed", Message: "operator:ann@noc1 confirmed that site c is dark"},
	}
	var b strings.Builder
	tab := newEventTable(events, []string{"a", "b", "c"})
	if err := tab.header(&b); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if err := tab.write(&b, e); err != nil {
			t.Fatal(err)
		}
	}
	// A later event with a longer kind does not move the columns before it.
	if err := tab.write(&b, site.Event{At: opsMS(1000), Site: "b", Kind: "op-abort-requested", Subject: "c"}); err != nil {
		t.Fatal(err)
	}
	want := `TIME                      SITE  KIND             OP                                    SUBJECT  MESSAGE
2026-12-02T03:13:00.000Z  a     op-started       20261202T031300.000Z-failover-3fa2c1  c        op started
2026-12-02T03:13:00.340Z  a     step             20261202T031300.000Z-failover-3fa2c1  c        site c fenced
2026-12-02T03:13:00.900Z  -     fence-confirmed  -                                     -        operator:ann@noc1 confirmed that site c is dark
2026-12-02T03:13:01.000Z  b     op-abort-requested  -                                     c
`
	if got := b.String(); got != want {
		t.Errorf("events table:\n%s\nwant:\n%s", got, want)
	}
}

func TestEventsCommand(t *testing.T) {
	store, path, _ := opsTestCluster(t)
	now := time.Now().UTC()
	for _, e := range []site.Event{
		{At: now.Add(-2 * time.Hour), Site: "a", Kind: "coordinator", Subject: "a", Message: "a is the coordinator"},
		{At: now.Add(-time.Hour), Site: "a", Kind: "op-started", Op: "op-1", Subject: "c", Message: "op op-1 (failover) started"},
		{At: now.Add(-50 * time.Minute), Site: "a", Kind: "step", Op: "op-1", Subject: "web", Message: "service web moved from site c to site a"},
		{At: now.Add(-40 * time.Minute), Site: "b", Kind: "replication", Subject: "b", Message: "member pg promoted"},
		{At: now.Add(-time.Minute), Site: "a", Kind: "op-succeeded", Op: "op-1", Subject: "c", Message: "op op-1 (failover) succeeded"},
	} {
		if err := store.AppendEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	messages := func(out string) []string {
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			got = append(got, line[strings.LastIndex(line, "  ")+2:])
		}
		return got
	}
	tests := []struct {
		args []string
		want []string
	}{
		{nil, []string{"a is the coordinator", "op op-1 (failover) started", "service web moved from site c to site a", "member pg promoted", "op op-1 (failover) succeeded"}},
		{[]string{"--limit", "2"}, []string{"member pg promoted", "op op-1 (failover) succeeded"}},
		{[]string{"--since", "55m"}, []string{"service web moved from site c to site a", "member pg promoted", "op op-1 (failover) succeeded"}},
		{[]string{"--site", "c"}, []string{"op op-1 (failover) started", "op op-1 (failover) succeeded"}},
		{[]string{"--site", "b,c", "--limit", "2"}, []string{"member pg promoted", "op op-1 (failover) succeeded"}},
		{[]string{"--service", "web"}, []string{"service web moved from site c to site a"}},
		{[]string{"--kind", "op-*", "--since", now.Add(-70 * time.Minute).Format(time.RFC3339)}, []string{"op op-1 (failover) started", "op op-1 (failover) succeeded"}},
	}
	for _, tt := range tests {
		out, err := runZDT(t, append([]string{"events", "--config", path}, tt.args...)...)
		if err != nil {
			t.Errorf("zdt events %s: %v", strings.Join(tt.args, " "), err)
			continue
		}
		if got := messages(out); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("zdt events %s:\n%s\nwant the events %q", strings.Join(tt.args, " "), out, tt.want)
		}
	}
	out, err := runZDT(t, "events", "--config", path, "--kind", "drill")
	if err != nil || out != "no events match\n" {
		t.Errorf("no events match: %q, %v", out, err)
	}
	out, err = runZDT(t, "events", "--config", path, "--kind", "drill", "-o", "json")
	if err != nil || out != "[]\n" {
		t.Errorf("no events match, as JSON: %q, %v", out, err)
	}
	out, err = runZDT(t, "events", "--config", path, "--service", "web", "-o", "json")
	var events []site.Event
	if err != nil || json.Unmarshal([]byte(out), &events) != nil || len(events) != 1 || events[0].Op != "op-1" || events[0].Kind != "step" {
		t.Errorf("events -o json: %v\n%s", err, out)
	}

	// --follow: the last event that matches, then each new one, as JSON
	// lines, until interrupted.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		cmd := newRootCommand()
		cmd.SetOut(pw)
		cmd.SetErr(pw)
		cmd.SetArgs([]string{"events", "--config", path, "--follow", "--kind", "op-*", "--limit", "1", "-o", "json"})
		done <- cmd.ExecuteContext(ctx)
		pw.Close()
	}()
	decode := func(line string) site.Event {
		t.Helper()
		var e site.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		return e
	}
	if e := decode(readLines(t, pr, 1)[0]); e.Kind != "op-succeeded" {
		t.Fatalf("first event followed: %+v; want the last op- event", e)
	}
	for _, e := range []site.Event{
		{At: time.Now(), Site: "b", Kind: "coordinator", Subject: "b", Message: "b is the coordinator"},
		{At: time.Now(), Site: "b", Kind: "op-started", Op: "op-2", Subject: "a", Message: "op op-2 (failover) started"},
	} {
		if err := store.AppendEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if e := decode(readLines(t, pr, 1)[0]); e.Op != "op-2" || e.Kind != "op-started" {
		t.Fatalf("next event followed: %+v; want op-2's op-started", e)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("events --follow, interrupted: %v; want a clean end", err)
	}
}
