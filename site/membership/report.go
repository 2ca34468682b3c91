package membership

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/ctxsleep"
)

func decodeFence(b []byte) (site.Fence, error) {
	var f site.Fence
	err := json.Unmarshal(b, &f)
	return f, err
}

func (m *Member) report() site.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return site.Report{
		Site:        m.cfg.Site,
		Incarnation: m.incarnation,
		State:       m.info.State,
		Reason:      m.info.Reason,
		Coordinator: m.coordinator,
		Updated:     time.Now(),
	}
}

// reportLoop writes the site's report whenever the member's state changes,
// retrying a failed write until it lands or a newer state replaces it.
//
// After its first write, each write is conditional on the report still
// being the one it wrote last: a write that was given up on (its context
// cancelled as the member stops) may still reach etcd, and must not land
// after the final report and say a stopped site is up.
func (m *Member) reportLoop(ctx context.Context) {
	backoff := ctxsleep.NewBackoff(200*time.Millisecond, 2*time.Second)
	var last *site.Report
	rev := int64(-1) // the report's mod revision as last seen; -1: unknown
	failed := 0      // writes in a row: each goes through the next store
	for {
		store := m.store(failed)
		changed := m.Changed()
		r := m.report()
		if last == nil || r.State != last.State || r.Reason != last.Reason || r.Coordinator != last.Coordinator {
			if r.State == site.ControllerJoining {
				last = &r // nothing to say before the first join
			} else {
				tctx, cancel := context.WithTimeout(ctx, m.requestTimeout())
				var err error
				if rev < 0 {
					err = store.PutReport(tctx, r)
					if err == nil {
						rev, err = m.reportRevision(tctx, store)
					}
				} else {
					var got int64
					got, err = store.PutReportAfter(tctx, r, rev)
					if err == nil || errors.Is(err, site.ErrConflict) {
						rev = got
					}
				}
				cancel()
				if err == nil {
					last = &r
					backoff.Reset()
					failed = 0
				} else if errors.Is(err, site.ErrConflict) {
					continue // written meanwhile by an earlier try: write over it
				} else {
					failed++
					m.log().Debug("report not written; retrying", zap.Error(err))
					if backoff.Wait(ctx) != nil {
						return
					}
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// reportRevision reads the mod revision of the site's report.
func (m *Member) reportRevision(ctx context.Context, store *site.Store) (int64, error) {
	resp, err := store.Client().Get(ctx, store.Keys().Report(m.cfg.Site), clientv3.WithKeysOnly())
	if err != nil {
		return -1, err
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return resp.Kvs[0].ModRevision, nil
}
