package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/zdt-project/zdt/cmd/zdt/internal/controller"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/embedetcd"
	"github.com/zdt-project/zdt/site/etcdmaint"
	"github.com/zdt-project/zdt/site/failstatic"
)

func newControllerCommand() *cobra.Command {
	var (
		configPath, siteName, embedDir, logLevel string
		profiles                                 bool
	)
	cmd := &cobra.Command{
		Use:   "controller --config FILE --site NAME [--embed-etcd DIR]",
		Short: "Run a site's controller",
		Long: `Run the controller of one site: it joins the cluster, holds the site's lease
(fencing the site itself if it cannot renew it in time), campaigns to be the
coordinator, and serves /healthz, /metrics and /api/v1/status on the site's API
address. With --embed-etcd it also runs the site's etcd member in-process,
with its data in DIR.

Stopping the controller stops the site: it gives up its lease, and the
coordinator fails its services over. Use a switchover for planned moves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if _, ok := cfg.Site(siteName); !ok {
				return usageErrorf("--site %q: not a site of cluster %s (sites: %v)", siteName, cfg.Name, cfg.SiteNames())
			}
			if err := refusePlaintext(cfg); err != nil {
				return err
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if p := cfg.Plaintext(); len(p) > 0 {
				log.Warn("INSECURE: running without TLS because the config sets insecure_plaintext", zap.Strings("plaintext", p))
			}
			ctx := cmd.Context()

			var memberStatus func() failstatic.MemberStatus
			if embedDir != "" {
				member, err := embedetcd.Start(cfg, siteName, embedDir, log)
				if err != nil {
					return err
				}
				defer member.Close()
				memberStatus = func() failstatic.MemberStatus { return embedetcd.Status(member) }
			} else if cfg.FailStatic.Enabled {
				log.Warn("fail_static is enabled, but this controller runs no etcd member (--embed-etcd): it cannot tell the other sites what etcd sees, so no site will fail static")
			}
			// With its own member, the controller talks to it alone: a
			// member elsewhere that hangs (a frozen site) cannot hold up its
			// lease renewals, and a member cut off from the others fails
			// them at once, so the site self-fences as it must.
			var endpoints []string
			if embedDir != "" {
				me, _ := cfg.Site(siteName)
				endpoints = []string{me.Etcd.ClientURL}
			}
			client, err := site.NewClient(cfg, endpoints, log)
			if err != nil {
				return err
			}
			defer client.Close()
			// The controller looks after its own member: its database's
			// size, defragmentation, the NOSPACE alarm (package etcdmaint).
			// Its membership renews through the other sites' members too,
			// should its own be lost.
			var (
				maint    *etcdmaint.Config
				fallback []*clientv3.Client
			)
			if embedDir != "" {
				cluster, err := site.NewClient(cfg, nil, log)
				if err != nil {
					return err
				}
				defer cluster.Close()
				maint = &etcdmaint.Config{Member: client, Cluster: cluster}
				if fallback, err = site.NewOthersClients(cfg, siteName, log); err != nil {
					return err
				}
				for _, c := range fallback {
					defer c.Close()
				}
			}
			ctrl, err := controller.New(controller.Config{
				Cluster:      cfg,
				Site:         siteName,
				Client:       client,
				Log:          log,
				RevokeOnStop: true,
				EtcdMember:   memberStatus,
				EtcdMaint:    maint,
				Fallback:     fallback,
				Profiles:     profiles,
			})
			if err != nil {
				return err
			}
			log.Info("controller starting", zap.String("cluster", cfg.Name), zap.Int("pid", os.Getpid()))
			return ctrl.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", configFlagHelp)
	cmd.Flags().StringVar(&siteName, "site", "", "the site this controller runs at (required)")
	cmd.Flags().StringVar(&embedDir, "embed-etcd", "", "run the site's etcd member in-process with its data in `DIR`")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().BoolVar(&profiles, "enable-pprof", false, "serve Go's runtime profiles at /debug/pprof/ on the API address, to admin identities")
	_ = cmd.MarkFlagRequired("site")
	return cmd
}

// refusePlaintext refuses a config that would run etcd or an API without
// TLS, unless it says insecure_plaintext: true.
func refusePlaintext(cfg *config.Cluster) error {
	p := cfg.Plaintext()
	if len(p) == 0 || cfg.InsecurePlaintext {
		return nil
	}
	return fmt.Errorf("%s: no TLS on %s; give etcd.tls and the sites' certificates (the API serves the etcd member's, or api_cert), or, for a test bed only, set insecure_plaintext: true",
		cfg.Path, strings.Join(p, ", "))
}

// newLogger returns the JSON logger the controller writes to stderr.
func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil
	return cfg.Build()
}
