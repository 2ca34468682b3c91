package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/e2e/lab/responder"
)

// newLabResponderCommand is `zdt lab responder`, which a lab in network
// namespaces runs at every site: hidden, people do not run it.
func newLabResponderCommand() *cobra.Command {
	var labDir, site, listen, urlFile string
	cmd := &cobra.Command{
		Use:    "responder",
		Short:  "Answer for a site of a lab in network namespaces (run by the lab)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if site == "" || listen == "" {
				return usageErrorf("--site and --listen are required")
			}
			var url string
			if urlFile != "" {
				data, err := os.ReadFile(urlFile)
				if err != nil {
					return fmt.Errorf("--database-url-file: %w", err)
				}
				url = strings.TrimSpace(string(data))
			}
			log, err := zap.NewProduction()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			srv, err := responder.New(site, url, log)
			if err != nil {
				return err
			}
			defer srv.Close()
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			log.Info("responder listening", zap.String("site", site), zap.String("listen", listen), zap.String("lab", labDir))
			return srv.Serve(cmd.Context(), l)
		},
	}
	cmd.Flags().StringVar(&labDir, "lab", "", "the lab's directory (identifies the process)")
	cmd.Flags().StringVar(&site, "site", "", "the site this responder answers for")
	cmd.Flags().StringVar(&listen, "listen", "", "host:port to listen on")
	cmd.Flags().StringVar(&urlFile, "database-url-file", "", "a file holding the replicated database's URL")
	return cmd
}
