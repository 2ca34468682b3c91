package site

import (
	"context"
	"sync"
	"time"

	"github.com/zdt-project/zdt/site/config"
)

// statusCache keeps the part of the status that a view's records decide
// (recordsStatus), built once for each state of the records: a dashboard
// asks a controller for the status every few seconds, and at a thousand
// services building it anew each time costs more than the rest of the
// controller's idle work. The beats, which change the state's revision
// twice a second, change none of it; what they and the clock do change
// (the leases, the alarms' ages, the observer's beat, etcd's own view) is
// added to each status after.
type statusCache struct {
	mu  sync.Mutex
	key statusKey
	st  Status
}

// statusKey says which records a built status was built from.
type statusKey struct {
	cfg *config.Cluster
	// changed and upstream are the revisions of the last change to the
	// snapshot's records and to the observer's; 0 for unknown.
	changed, upstream int64
	coordinator       string
}

// records returns recordsStatus for cfg, snap and routes (last changed at
// revision routesAt), built anew only when the records changed since the
// last call. Its lists are shared with every other status built from the
// same records, and must not be changed in place: a reader that cuts a
// list makes a new one.
func (c *statusCache) records(cfg *config.Cluster, snap *Snapshot, routes map[string]UpstreamRoute, routesAt int64) Status {
	key := statusKey{cfg: cfg, changed: snap.Changed, upstream: routesAt, coordinator: snap.Coordinator}
	if key.changed == 0 || (cfg.BGP.Observer != nil && key.upstream == 0) {
		return recordsStatus(cfg, snap, routes)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Built under the lock: readers that come together wait for one build.
	if c.key != key {
		c.key, c.st = key, recordsStatus(cfg, snap, routes)
	}
	return c.st
}

// Status is the status of the view's records as BuildStatus builds it, with
// the observer's view when cfg has an observer, and its alarms as of now:
// without the time left on the leases, the observer's beat or etcd's own
// view (StatusFrom adds them). Its lists are shared with other statuses of
// the same records and must not be changed in place.
func (v *View) Status(ctx context.Context, cfg *config.Cluster) (Status, error) {
	snap, routes, routesAt, err := v.read(ctx, true)
	if err != nil {
		return Status{}, err
	}
	return v.statuses.status(cfg, snap, routes, routesAt), nil
}

// status is records with what the records alone do not decide: the
// snapshot's revision (the cached records may be older) and the alarms as
// of now (their ages move).
func (c *statusCache) status(cfg *config.Cluster, snap *Snapshot, routes map[string]UpstreamRoute, routesAt int64) Status {
	st := c.records(cfg, snap, routes, routesAt)
	st.Revision = snap.Rev
	st.Alarms = Alarms(cfg, snap, time.Now())
	return st
}
