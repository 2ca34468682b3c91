package site

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// HostDrain records that a hypervisor host is drained for maintenance (a
// runbook's drain-host step): guest placement gives it no room, so its
// guests move, to other hosts of its site first. undrain-host removes it.
type HostDrain struct {
	Site   string    `json:"site"`
	Host   string    `json:"host"`
	Op     string    `json:"op"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// hostDrainLeaf is the part of a site's key, after "<site>/", under which
// its hosts' drain records are.
const hostDrainLeaf = "host-drain/"

// HostDrain is the key of a host's drain record.
func (k Keys) HostDrain(site, host string) string {
	return k.Sites() + site + "/" + hostDrainLeaf + host
}

// HostDrained reports whether the host is drained.
func (s *Snapshot) HostDrained(host string) bool {
	_, ok := s.HostDrains[host]
	return ok
}

// PutHostDrain marks a host drained, guarded by g; a record there already
// is replaced.
func (s *Store) PutHostDrain(ctx context.Context, g Guard, d HostDrain) error {
	put, err := putJSON(s.keys.HostDrain(d.Site, d.Host), d)
	if err != nil {
		return err
	}
	if _, err := s.commit(ctx, &g, nil, []clientv3.Op{put}); err != nil {
		return fmt.Errorf("drain host %s: %w", d.Host, err)
	}
	return nil
}

// DeleteHostDrain removes a host's drain record, guarded by g; none there
// is no error.
func (s *Store) DeleteHostDrain(ctx context.Context, g Guard, site, host string) error {
	if _, err := s.commit(ctx, &g, nil, []clientv3.Op{clientv3.OpDelete(s.keys.HostDrain(site, host))}); err != nil {
		return fmt.Errorf("undrain host %s: %w", host, err)
	}
	return nil
}
