package controller

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/failstatic"
	"github.com/zdt-project/zdt/site/membership"
)

// setUpFailStatic loads the mutual TLS of the fail-static checks and
// hooks them into the membership, when the config enables them.
func (c *Controller) setUpFailStatic(mcfg *membership.Config) error {
	fs := c.cfg.Cluster.FailStatic
	if !fs.Enabled {
		return nil
	}
	server, client, err := failstatic.TLS(fs.CA, c.site.PeerCert, c.site.PeerKey)
	if err != nil {
		return fmt.Errorf("site %s: %w", c.site.Name, err)
	}
	peers := map[string]string{}
	for _, s := range c.cfg.Cluster.Sites {
		if s.Name != c.site.Name {
			peers[s.Name] = s.PeerAPI
			if addr, ok := c.cfg.PeerAddrs[s.Name]; ok {
				peers[s.Name] = addr
			}
		}
	}
	checker := &failstatic.Checker{
		Me: c.site.Name, Peers: peers, Client: failstatic.NewClient(client),
		Timeout: fs.CheckTimeout, Own: c.answerPeer,
	}
	c.peerTLS = server
	mcfg.FailStatic, mcfg.CheckTimeout = checker.Check, fs.CheckTimeout
	mcfg.OnFailStatic = c.onFailStatic
	return nil
}

// answerPeer is this controller's answer to a fail-static check: what its
// etcd member sees, and whether its coordinator is in the middle of an op.
// Asked for a pledge, it first pauses its sweeper (membership.Sweeper.Pause):
// the asking site relies on that until this site has beaten again. A site
// asks for pledges only after every site's view ruled out a working
// majority, so a sweeper is not paused while the majority needs it.
func (c *Controller) answerPeer(_ context.Context, pledge bool) failstatic.View {
	st := failstatic.MemberStatus{State: failstatic.MemberUnknown}
	if c.cfg.EtcdMember != nil {
		st = c.cfg.EtcdMember()
	}
	v := failstatic.View{Site: c.site.Name, Member: st.State, Self: st.Self, Leader: st.Leader, NoSpace: st.NoSpace,
		State: string(c.member.Info().State)}
	if c.Leading() {
		v.OpRunning = c.coord.OpRunning()
	}
	if pledge && v.Member != failstatic.MemberUnknown {
		v.Pledged = c.sweeper.Pause()
		if v.Pledged {
			c.cfg.Log.Info("fail static: paused the sweeper for another site's check", zap.String("site", c.site.Name),
				zap.String("member", string(v.Member)), zap.Bool("no_space", v.NoSpace))
		}
	}
	return v
}

// onFailStatic is the membership's fail-static hook: it raises and clears
// the alarm (log, metric) and, when it ends, records the episode in the
// event log, which etcd takes again by then (unless the site fenced
// itself).
func (c *Controller) onFailStatic(on bool, why string, since time.Time) {
	log := c.cfg.Log.With(zap.String("site", c.site.Name))
	if on {
		c.metrics.failStatic.Set(1)
		log.Error("FAIL STATIC: etcd has failed for every site; serving on in the current roles, automation frozen", zap.String("why", why))
		return
	}
	c.metrics.failStatic.Set(0)
	took := time.Since(since).Round(time.Millisecond)
	log.Warn("fail static ended", zap.String("why", why), zap.Duration("after", took))
	e := site.Event{At: time.Now(), Site: c.site.Name, Kind: "fail-static", Subject: c.site.Name,
		Message: fmt.Sprintf("%s failed static for %s from %s (etcd had failed for every site: it served on in its roles, nothing moved); ended: %s",
			c.site.Name, took, since.UTC().Format(time.RFC3339), why)}
	go func() {
		// The member's goroutine must not wait for etcd.
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Cluster.Timings.LeaseTTL)
		defer cancel()
		if err := c.store.AppendEvent(ctx, e); err != nil {
			log.Warn("fail-static event not written", zap.Error(err))
		}
	}()
}
