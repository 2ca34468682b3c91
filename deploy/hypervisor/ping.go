package hypervisor

import (
	"context"
	"time"
)

// Ping opens one connection to the hypervisor at uri, waits for its first
// answer (its libvirt version) for at most limit, and closes it again: it
// tells whether a daemon answers there, without keeping a Host.
func Ping(ctx context.Context, uri string, limit time.Duration) error {
	t, err := ParseURI(uri)
	if err != nil {
		return err
	}
	h := &Host{name: uri, target: t, answerLimit: limit}
	c, err := h.connect(ctx)
	if err != nil {
		return err
	}
	c.close()
	h.calls.Wait()
	return nil
}
