package site

import (
	"crypto/tls"
	"fmt"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site/config"
)

// NewClient connects to the cluster's etcd with its client TLS settings.
// endpoints overrides the configured endpoints when not empty (tests put a
// proxy between a controller and etcd this way).
func NewClient(cfg *config.Cluster, endpoints []string, log *zap.Logger) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		endpoints = cfg.Etcd.Endpoints
	}
	var tlsCfg *tls.Config
	if t := cfg.Etcd.TLS; t != nil {
		info := transport.TLSInfo{CertFile: t.Cert, KeyFile: t.Key, TrustedCAFile: t.CA}
		var err error
		if tlsCfg, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd client TLS (ca %s, cert %s): %w", t.CA, t.Cert, err)
		}
	}
	c, err := clientv3.New(clientv3.Config{
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
