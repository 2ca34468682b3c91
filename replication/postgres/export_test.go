package postgres

import (
	"context"
	"io"
)

// SetBetweenFenceParts makes fn run in m's Fence between its two parts:
// once the member is read-only, before its sessions are cut. nil removes it.
func SetBetweenFenceParts(m *Member, fn func(ctx context.Context)) { m.betweenFenceParts = fn }

// SetCommandOutput makes the output of m's local commands go to the writer
// fn returns for the program's name too (nil: nowhere else).
func SetCommandOutput(m *Member, fn func(name string) io.Writer) { m.commandOutput = fn }

// WaitRewind waits until a pg_rewind that runs on past its call has ended.
func WaitRewind(m *Member) { m.waitRewind() }
