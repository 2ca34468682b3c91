package embedetcd_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zdt-project/zdt/site/sitetest"
)

// TestMembersLogOnlySlowRequests: an embedded member logs a request's
// stats only when it took longer than etcd's warning threshold, not every
// request (which was nearly all of an idle controller's log).
func TestMembersLogOnlySlowRequests(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	cl := sitetest.New(t, sitetest.Options{Log: zap.New(core)})
	cli := cl.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const requests = 50
	for i := range requests {
		if _, err := cli.Put(ctx, fmt.Sprintf("/test/%d", i), "v"); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Get(ctx, fmt.Sprintf("/test/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	stats := logs.FilterMessage("request stats").All()
	for _, e := range stats {
		spent, ok := e.ContextMap()["time spent"].(time.Duration)
		if !ok || spent < embed.DefaultWarningUnaryRequestDuration {
			t.Errorf("a request that took %v (%T) was logged: %v", e.ContextMap()["time spent"], e.ContextMap()["time spent"], e.ContextMap())
		}
	}
	t.Logf("%d requests, %d request stats logged (slower than %s)", 2*requests, len(stats), embed.DefaultWarningUnaryRequestDuration)
}
