package postgres

import "context"

// SetBetweenFenceParts makes fn run in m's Fence between its two parts:
// once the member is read-only, before its sessions are cut. nil removes it.
func SetBetweenFenceParts(m *Member, fn func(ctx context.Context)) { m.betweenFenceParts = fn }
