// Command zdt is the multi-site disaster-tolerance controller: one binary
// for the per-site controller, the operator's CLI and the three-site lab.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "zdt:", err)
		os.Exit(exitCode(err))
	}
}
