package main

import (
	"errors"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/bgp/observer"
	"github.com/zdt-project/zdt/site"
)

func newObserverCommand() *cobra.Command {
	var configPath, logLevel string
	cmd := &cobra.Command{
		Use:   "observer --config FILE",
		Short: "Run the route observer",
		Long: `Run the route observer of the config's bgp.observer section: a BGP speaker
that accepts sessions from the peers listed there (the sites' speakers in the
lab, the upstream routers in production), and publishes into etcd, for every
service prefix, which site the best path leads to and with what AS path.
` + "`zdt status`" + ` shows it in its UPSTREAM columns, and a site taking a service over
uses it to know when the dark site's stale path is gone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if cfg.BGP.Observer == nil {
				return &exitError{code: 2, err: errors.New(configPath + ": no bgp.observer section: the observer has nothing to listen on")}
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			client, err := site.NewClient(cfg, nil, log)
			if err != nil {
				return err
			}
			defer client.Close()
			ctx := cmd.Context()
			o, err := observer.Start(ctx, observer.Config{Cluster: cfg, Store: site.NewStore(client, cfg.Name), Log: log})
			if err != nil {
				return err
			}
			log.Info("observer started", zap.Stringer("listen", cfg.BGP.Observer.Listen))
			return o.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", configFlagHelp)
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
