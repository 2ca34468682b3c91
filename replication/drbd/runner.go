package drbd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Runner runs one command and returns its standard output. It is the one
// seam between the driver and the node: tests substitute a recording fake.
//
// When the command fails, the error says why; a command that ran and exited
// non-zero is reported as a *CommandError carrying its standard error.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// CommandError is a command that ran and exited with a non-zero status.
type CommandError struct {
	ExitCode int
	Stderr   string // trimmed; Error joins its lines with "; "
	Err      error  // the underlying *exec.ExitError
}

func (e *CommandError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("exit status %d", e.ExitCode)
	}
	lines := strings.FieldsFunc(e.Stderr, func(r rune) bool { return r == '\n' || r == '\r' })
	return fmt.Sprintf("exit status %d: %s", e.ExitCode, strings.Join(lines, "; "))
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExecRunner runs commands as child processes (os/exec), in the
// environment of the controller.
type ExecRunner struct {
	// WaitDelay bounds how long Run waits for the command's output after
	// ctx is done and the command was killed; 0 means 5 seconds.
	WaitDelay time.Duration
}

// Run runs name with args and returns its standard output.
func (r ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = r.WaitDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return stdout.Bytes(), fmt.Errorf("%w (%v)", ctxErr, err)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return stdout.Bytes(), &CommandError{
			ExitCode: exitErr.ExitCode(),
			Stderr:   strings.TrimSpace(stderr.String()),
			Err:      exitErr,
		}
	}
	return stdout.Bytes(), err
}
