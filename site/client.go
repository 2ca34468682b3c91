package site

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/ctxsleep"
)

// NewClient connects to the cluster's etcd with its client TLS settings.
// endpoints overrides the configured endpoints when not empty (tests put a
// proxy between a controller and etcd this way).
func NewClient(cfg *config.Cluster, endpoints []string, log *zap.Logger) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		endpoints = cfg.Etcd.Endpoints
	}
	return newClient(cfg, endpoints, len(endpoints) > 1, log)
}

// NewOthersClients connects to the etcd member of every site but
// siteName, a client each, for a controller whose own client talks to its
// site's member alone: the way around that member when it is lost (see
// membership.Config.Fallback). Every request they send requires a leader,
// so that a member without one refuses it at once. On an error it closes
// the clients it made.
func NewOthersClients(cfg *config.Cluster, siteName string, log *zap.Logger) ([]*clientv3.Client, error) {
	var clients []*clientv3.Client
	for _, s := range cfg.Sites {
		if s.Name == siteName || s.Etcd.ClientURL == "" {
			continue
		}
		c, err := newClient(cfg, []string{s.Etcd.ClientURL}, true, log)
		if err != nil {
			for _, c := range clients {
				_ = c.Close()
			}
			return nil, fmt.Errorf("site %s's etcd member: %w", s.Name, err)
		}
		clients = append(clients, c)
	}
	return clients, nil
}

func newClient(cfg *config.Cluster, endpoints []string, leader bool, log *zap.Logger) (*clientv3.Client, error) {
	var tlsCfg *tls.Config
	if t := cfg.Etcd.TLS; t != nil {
		info := transport.TLSInfo{CertFile: t.Cert, KeyFile: t.Key, TrustedCAFile: t.CA}
		var err error
		if tlsCfg, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd client TLS (ca %s, cert %s): %w", t.CA, t.Cert, err)
		}
	}
	var dial []grpc.DialOption
	if leader {
		dial = append(dial, grpc.WithChainUnaryInterceptor(requireLeader))
	}
	c, err := clientv3.New(clientv3.Config{
		DialOptions:          dial,
		Endpoints:            endpoints,
		DialTimeout:          cfg.Etcd.DialTimeout,
		DialKeepAliveTime:    cfg.Timings.LeaseTTL,
		DialKeepAliveTimeout: cfg.Timings.LeaseTTL,
		TLS:                  tlsCfg,
		Logger:               log.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.WarnLevel)),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	return c, nil
}

// requireLeader makes every request of a client with several endpoints
// one that a member without a leader refuses at once ("no leader"), and
// sends a refused one again, to the next member, until one with a leader
// takes it or ctx ends: a member cut off from the leader while the others
// keep a quorum (one inter-site link down) would otherwise hold a person's
// zdt status until it gave up. A member refuses such a request before it
// does anything with it, so sending it again is safe for writes too;
// during an election every member refuses, and the request goes out again
// until there is a leader.
func requireLeader(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx = clientv3.WithRequireLeader(ctx)
	backoff := ctxsleep.NewBackoff(noLeaderRetryMin, noLeaderRetryMax)
	for {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil || rpctypes.ErrorDesc(err) != rpctypes.ErrNoLeader.Error() {
			return err
		}
		if backoff.Wait(ctx) != nil {
			return err
		}
	}
}

// The pauses between requests that members refused for want of a leader.
const (
	noLeaderRetryMin = 10 * time.Millisecond
	noLeaderRetryMax = 200 * time.Millisecond
)
