package drbd

import (
	"context"
	"errors"
	"os/exec"
	"testing"
)

// These tests run real processes through sh, which every test machine has.

func TestExecRunnerOutput(t *testing.T) {
	out, err := ExecRunner{}.Run(context.Background(), "sh", "-c", "printf 'exists -\\n'; echo ignored >&2")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "exists -\n" {
		t.Errorf("out = %q", out)
	}
}

func TestExecRunnerNonZeroExit(t *testing.T) {
	out, err := ExecRunner{}.Run(context.Background(), "sh", "-c",
		"echo partial; echo 'r0: State change failed: (-12) Device is held open by someone' >&2; "+
			"echo \"Command 'drbdsetup secondary r0' terminated with exit code 11\" >&2; exit 11")
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *CommandError", err, err)
	}
	if ce.ExitCode != 11 || ce.Stderr != "r0: State change failed: (-12) Device is held open by someone\n"+
		"Command 'drbdsetup secondary r0' terminated with exit code 11" {
		t.Errorf("CommandError = %+v", ce)
	}
	want := "exit status 11: r0: State change failed: (-12) Device is held open by someone; " +
		"Command 'drbdsetup secondary r0' terminated with exit code 11"
	if err.Error() != want {
		t.Errorf("Error() = %q\nwant %q", err, want)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Errorf("the *exec.ExitError is not wrapped")
	}
	if string(out) != "partial\n" {
		t.Errorf("out = %q", out)
	}
}

func TestExecRunnerExitWithoutStderr(t *testing.T) {
	_, err := ExecRunner{}.Run(context.Background(), "sh", "-c", "exit 3")
	if err == nil || err.Error() != "exit status 3" {
		t.Errorf("err = %v", err)
	}
}

func TestExecRunnerMissingCommand(t *testing.T) {
	_, err := ExecRunner{}.Run(context.Background(), "drbdsetup-that-does-not-exist")
	if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("err = %v, want exec.ErrNotFound", err)
	}
}

func TestExecRunnerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ExecRunner{}.Run(ctx, "sh", "-c", "exit 0")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
