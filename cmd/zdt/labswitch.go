package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/e2e/softswitch"
)

// newLabSwitchCommand is `zdt lab switch`, the switch between the sites
// of a lab in network namespaces, which the lab runs in the fabric's
// namespace: hidden, people do not run it.
func newLabSwitchCommand() *cobra.Command {
	var labDir string
	cmd := &cobra.Command{
		Use:    "switch",
		Short:  "Switch frames between the sites of a lab in network namespaces (run by the lab)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if labDir == "" {
				return usageErrorf("--lab is required")
			}
			log, err := zap.NewProduction()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			return lab.RunSwitch(cmd.Context(), labDir, log)
		},
	}
	cmd.Flags().StringVar(&labDir, "lab", "", "the lab's directory")
	return cmd
}

// newLabLinkCommand is `zdt lab link`: the links between two sites of a
// lab in network namespaces, delayed, cut or healed.
func newLabLinkCommand(o *labOptions) *cobra.Command {
	var cut, heal bool
	var delay, jitter time.Duration
	var blockPort uint16
	cmd := &cobra.Command{
		Use:   "link [SITE SITE]",
		Short: "Show, delay, cut or heal the link between two sites of a lab in network namespaces",
		Long: `Show, delay, cut or heal the link between two sites of a lab in network
namespaces (zdt lab --netns). The sites' links to each other cross a switch
in userspace, which delays frames between two sites (in order, with jitter)
or drops them all (--cut). A cut link leaves both sites their links to the
third site and to the upstream: the fault of one inter-site link.
--block-port drops TCP to and from one port only (2380, the etcd members'
peer port, cuts two members apart while the rest of the link works; with
--delay, both hold). Without sites it lists the links that are not direct.`,
		Example: `  zdt lab link --dir /tmp/netlab
  zdt lab link a b --cut --dir /tmp/netlab
  zdt lab link a b --heal --dir /tmp/netlab
  zdt lab link b c --delay 100ms --jitter 20ms --dir /tmp/netlab
  zdt lab link a b --block-port 2380 --dir /tmp/netlab`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return errors.New("give two sites, for example `zdt lab link a b --cut --dir DIR`, or none to list the links")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var set []string
			for _, a := range []struct {
				name string
				on   bool
			}{{"--cut", cut}, {"--heal", heal},
				{"--delay or --block-port", cmd.Flags().Changed("delay") || cmd.Flags().Changed("jitter") || cmd.Flags().Changed("block-port")}} {
				if a.on {
					set = append(set, a.name)
				}
			}
			if len(args) == 0 && len(set) > 0 {
				return usageErrorf("%s needs two sites: zdt lab link SITE SITE %s", set[0], set[0])
			}
			if len(args) == 2 && len(set) != 1 {
				return usageErrorf("give one of --cut, --heal, and --delay (with --jitter) or --block-port for the link %s-%s", args[0], args[1])
			}
			l, err := openLab(o, "zdt lab link")
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 2 {
				link := softswitch.Link{Cut: cut, Delay: delay, Jitter: jitter, BlockTCPPort: blockPort}
				if err := l.SetLink(cmd.Context(), lab.SiteLink{A: args[0], B: args[1], Link: link}); err != nil {
					return err
				}
			}
			links, err := l.Links(cmd.Context())
			if err != nil {
				return err
			}
			printLinks(out, links)
			return nil
		},
	}
	cmd.Flags().BoolVar(&cut, "cut", false, "drop every frame between the two sites")
	cmd.Flags().BoolVar(&heal, "heal", false, "make the link direct again")
	cmd.Flags().DurationVar(&delay, "delay", 0, "one-way delay of every frame between the two sites")
	cmd.Flags().DurationVar(&jitter, "jitter", 0, "jitter of --delay: each frame gets the delay ± up to this much, in order")
	cmd.Flags().Uint16Var(&blockPort, "block-port", 0, "drop TCP to and from this port between the two sites")
	return cmd
}

func printLinks(out io.Writer, links []lab.SiteLink) {
	if len(links) == 0 {
		fmt.Fprintln(out, "every link between the sites is direct")
		return
	}
	for _, l := range links {
		fmt.Fprintln(out, l)
	}
}
