package site

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Drain records that a site was evacuated (zdt evacuate): it is up and
// serves as a standby, but no failover, switchover target choice or guest
// placement picks it while another site will do. zdt undrain removes it.
type Drain struct {
	Site   string    `json:"site"`
	Op     string    `json:"op"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Drained reports whether the site is drained.
func (s *Snapshot) Drained(site string) bool {
	_, ok := s.Drains[site]
	return ok
}

// PutDrain marks a site drained, guarded by g. A drain record already
// there is replaced.
func (s *Store) PutDrain(ctx context.Context, g Guard, d Drain) error {
	put, err := putJSON(s.keys.Drain(d.Site), d)
	if err != nil {
		return err
	}
	if _, err := s.commit(ctx, &g, nil, []clientv3.Op{put}); err != nil {
		return fmt.Errorf("drain site %s: %w", d.Site, err)
	}
	return nil
}

// DeleteDrain removes a site's drain record, guarded by g; none there is
// no error.
func (s *Store) DeleteDrain(ctx context.Context, g Guard, site string) error {
	if _, err := s.commit(ctx, &g, nil, []clientv3.Op{clientv3.OpDelete(s.keys.Drain(site))}); err != nil {
		return fmt.Errorf("undrain site %s: %w", site, err)
	}
	return nil
}
