// Package embedetcd runs a site's etcd member inside the site's controller
// process (go.etcd.io/etcd/server/v3/embed), so a site needs no separately
// managed etcd.
package embedetcd

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/failstatic"
)

// Option changes the member's etcd config before it starts (tests: a
// small database quota).
type Option func(*embed.Config)

// Start starts the named site's etcd member with its data in dir. A dir that
// already holds the member's data rejoins the existing cluster; an empty one
// bootstraps the cluster from every site's peer URL. It returns once the
// member listens; the member may still be waiting
// for a quorum (see WaitReady).
func Start(cfg *config.Cluster, siteName, dir string, log *zap.Logger, opts ...Option) (*embed.Etcd, error) {
	ec, err := memberConfig(cfg, siteName, dir, log, opts...)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd data dir: %w", err)
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start etcd member %s in %s: %w", siteName, dir, err)
	}
	return e, nil
}

// WaitReady waits until the member has joined a cluster with a quorum.
func WaitReady(ctx context.Context, e *embed.Etcd) error {
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcd member failed: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("etcd member not ready (no quorum yet?): %w", ctx.Err())
	}
}

// snapshotCount and catchUpEntries bound the raft log each member keeps
// in memory (see memberConfig).
const (
	snapshotCount  = 1000
	catchUpEntries = 1000
)

func memberConfig(cfg *config.Cluster, siteName, dir string, log *zap.Logger, opts ...Option) (*embed.Config, error) {
	me, ok := cfg.Site(siteName)
	if !ok {
		return nil, fmt.Errorf("site %q is not in the cluster config (sites: %s)", siteName, strings.Join(cfg.SiteNames(), ", "))
	}
	clientURL, err := url.Parse(me.Etcd.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("site %s etcd client_url: %w", siteName, err)
	}
	peerURL, err := url.Parse(me.Etcd.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("site %s etcd peer_url: %w", siteName, err)
	}
	var initial []string
	for _, s := range cfg.Sites {
		initial = append(initial, s.Name+"="+s.Etcd.PeerURL)
	}

	ec := embed.NewConfig()
	ec.Name = siteName
	ec.Dir = dir
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*clientURL}, []url.URL{*clientURL}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*peerURL}, []url.URL{*peerURL}
	ec.InitialCluster = strings.Join(initial, ",")
	ec.InitialClusterToken = "zdt-" + cfg.Name
	ec.ClusterState = embed.ClusterStateFlagNew
	if _, err := os.Stat(filepath.Join(dir, "member")); err == nil {
		ec.ClusterState = embed.ClusterStateFlagExisting
	}
	ec.TickMs = uint(cfg.Timings.EtcdHeartbeat / time.Millisecond)
	ec.ElectionMs = uint(cfg.Timings.EtcdElectionTimeout / time.Millisecond)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(log.Named("etcd").With(zap.String("site", siteName)).WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	// Only slow requests are logged. embed.NewConfig leaves this at 0 (the
	// etcd binary's flags set it), which logs every request as a warning:
	// nearly all of an idle controller's log.
	ec.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "1h"
	// The raft log is kept in memory from one snapshot to the next, and
	// each entry is a whole write: a failover of a thousand services
	// writes tens of MB of entries (assignments, placements, reports in
	// transactions of a hundred), held until the next snapshot. etcd's
	// defaults (a snapshot every 10,000 entries, 5,000 kept for a slow
	// follower) kept them for most of an hour at the sites' beat rate;
	// these keep them a few minutes. A follower more than catchUpEntries
	// behind (minutes at idle) is sent a snapshot of the database instead.
	ec.SnapshotCount = snapshotCount
	ec.SnapshotCatchUpEntries = catchUpEntries
	if me.Etcd.Cert != "" {
		tls := transport.TLSInfo{CertFile: me.Etcd.Cert, KeyFile: me.Etcd.Key}
		if cfg.Etcd.TLS != nil {
			tls.TrustedCAFile = cfg.Etcd.TLS.CA
			tls.ClientCertAuth = true
		}
		ec.ClientTLSInfo, ec.PeerTLSInfo = tls, tls
	}
	for _, o := range opts {
		o(ec)
	}
	if err := ec.Validate(); err != nil {
		return nil, fmt.Errorf("etcd member %s: %w", siteName, err)
	}
	return ec, nil
}

// Status reads what the member itself sees: whether it runs, the leader
// it follows, and whether it holds the NOSPACE alarm. It asks the member,
// not a client, so it answers without a quorum.
func Status(e *embed.Etcd) failstatic.MemberStatus {
	if e == nil {
		return failstatic.MemberStatus{State: failstatic.MemberStopped}
	}
	self := uint64(e.Server.MemberID())
	select {
	case <-e.Server.StopNotify():
		return failstatic.MemberStatus{State: failstatic.MemberStopped, Self: self}
	default:
	}
	st := failstatic.MemberStatus{State: failstatic.MemberNoLeader, Self: self, Leader: uint64(e.Server.Leader())}
	if st.Leader != 0 {
		st.State = failstatic.MemberLeader
	}
	for _, a := range e.Server.Alarms() {
		if a.Alarm == etcdserverpb.AlarmType_NOSPACE {
			st.NoSpace = true
		}
	}
	return st
}
