package membership

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
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
func (m *Member) reportLoop(ctx context.Context) {
	backoff := newBackoff(200*time.Millisecond, 2*time.Second)
	var last *site.Report
	for {
		changed := m.Changed()
		r := m.report()
		if last == nil || r.State != last.State || r.Reason != last.Reason || r.Coordinator != last.Coordinator {
			if r.State == site.ControllerJoining {
				last = &r // nothing to say before the first join
			} else {
				tctx, cancel := context.WithTimeout(ctx, m.cfg.RenewInterval)
				err := m.cfg.Store.PutReport(tctx, r)
				cancel()
				if err == nil {
					last = &r
					backoff.reset()
				} else {
					m.log().Debug("report not written; retrying", zap.Error(err))
					if backoff.wait(ctx) != nil {
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
