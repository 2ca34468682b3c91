package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/site/config"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with the cluster config file",
	}
	var offline bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a cluster config file and report every problem at once",
		Long: `Check a cluster config file and report every problem at once, as
FILE:LINE: field: what is wrong (exit status 2, as when the file cannot be
read).

A valid file's PostgreSQL replication members are then probed (unless
--offline): a warning for each setting that keeps a member from failing over
fully, above all neither wal_log_hints nor data checksums (pg_rewind could not
turn a former primary into a standby), and a note for each member it cannot
reach. Warnings do not change the exit status.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: ok: cluster %s, %d sites, %d services\n", args[0], cfg.Name, len(cfg.Sites), len(cfg.Services))
			if !offline {
				probeMembers(cmd.Context(), out, args[0], cfg)
			}
			return nil
		},
	}
	check.Flags().BoolVar(&offline, "offline", false, "do not connect to the replication members")
	cmd.AddCommand(check)
	return cmd
}

// loadConfig loads and validates the cluster config, with the guests'
// domain files. A config with problems is an error listing each as
// FILE:LINE: field: what is wrong, and a config file that cannot be read
// one that says why; both exit with status 2.
func loadConfig(path string) (*config.Cluster, error) {
	return loadConfigWith(path, config.Load)
}

// readConfig loads and validates the cluster config as loadConfig does,
// but for the guests' domain files (config.LoadWithoutDomains): for the
// commands that work through etcd and the controllers.
func readConfig(path string) (*config.Cluster, error) {
	return loadConfigWith(path, config.LoadWithoutDomains)
}

func loadConfigWith(path string, load func(string) (*config.Cluster, error)) (*config.Cluster, error) {
	if path == "" {
		return nil, &exitError{code: 2, err: errNoConfig}
	}
	cfg, err := load(path)
	var problems config.Problems
	var unreadable *fs.PathError
	switch {
	case errors.As(err, &problems):
		return nil, &exitError{code: 2, err: fmt.Errorf("%d problem(s) in %s:\n%w", len(problems), path, err)}
	case errors.As(err, &unreadable):
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: cannot read the cluster config: %w%s", path, unreadable.Err, readHint(path, unreadable.Err))}
	case err != nil:
		return nil, err
	}
	return cfg, nil
}

// readHint says what to do about the config file at path that cannot be
// read because of err.
func readHint(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(path):
		if wd, werr := os.Getwd(); werr == nil {
			return "; check the path, which is relative to the working directory " + wd
		}
		return "; check the path, which is relative to the working directory"
	case errors.Is(err, fs.ErrNotExist):
		return "; check the path"
	case errors.Is(err, fs.ErrPermission):
		return "; make it readable by the user zdt runs as"
	}
	return ""
}

// Where a command finds the cluster config when --config is not given.
const (
	// configEnv names the environment variable that gives it.
	configEnv = "ZDT_CONFIG"
	// DefaultConfigPath is where it is installed.
	DefaultConfigPath = "/etc/zdt/zdt.yaml"
)

// configFlagHelp is the help of every --config flag.
const configFlagHelp = "cluster config file (default: $" + configEnv + ", else " + DefaultConfigPath + " if it exists)"

var errNoConfig = errors.New("no cluster config file given: give --config FILE, set " + configEnv + ", or install it as " + DefaultConfigPath)

// defaultConfig gives a command's --config flag, when it has one and it was
// not set, the value of $ZDT_CONFIG (env), or else path when that file
// exists.
func defaultConfig(cmd *cobra.Command, env, path string) error {
	f := cmd.Flags().Lookup("config")
	if f == nil || f.Changed {
		return nil
	}
	if env == "" {
		if _, err := os.Stat(path); err != nil {
			return nil
		}
		env = path
	}
	return f.Value.Set(env)
}
