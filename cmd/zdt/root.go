package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit status for a command that failed in a
// way scripts should tell apart (for example: config problems found).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage error: a bad flag or argument (exit status 2).
func usageErrorf(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if strings.HasPrefix(err.Error(), "required flag(s) ") {
		return 2 // cobra's, a usage error like the others
	}
	return 1
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "zdt",
		Short:         "zdt keeps services running when a data centre goes dark",
		SilenceUsage:  true,
		SilenceErrors: true,
		// A command's --config defaults to $ZDT_CONFIG, then to
		// DefaultConfigPath when that file exists.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return defaultConfig(cmd, os.Getenv(configEnv), DefaultConfigPath)
		},
	}
	root.AddCommand(
		newConfigCommand(),
		newControllerCommand(),
		newStatusCommand(),
		newLabCommand(),
		newObserverCommand(),
		newFenceCommand(),
		newOpsCommand(),
		newEventsCommand(),
		newFailbackCommand(),
		newFailoverCommand(),
		newSwitchoverCommand(),
		newEvacuateCommand(),
		newUndrainCommand(),
		newRunbookCommand(),
		newDrillCommand(),
		newVersionCommand(),
	)
	addCompletions(root)
	return root
}
