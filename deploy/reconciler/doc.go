// Package reconciler converges one site's hypervisors to the guest
// placements in etcd. It runs in every site's controller and touches only
// that site's hosts:
//
//   - while the site is up, a guest placed on one of its hosts is defined
//     from its domain XML and started (or resumed), and every copy of a
//     guest that is placed anywhere else, preempted or unplaced is
//     destroyed — copies first, so a site coming back from the dark never
//     runs a guest twice;
//   - while the site is self-fenced, its guests are paused: they stop at
//     once, and resume without a reboot if the lease turns out to have
//     held;
//   - while the site is fenced or its controller stops, its guests are
//     destroyed: the coordinator places them elsewhere.
//
// It reports each host's capacity, health and running guests to the site's
// hosts report in etcd (on change), where the coordinator's placement
// solver and `zdt status` read them.
package reconciler
