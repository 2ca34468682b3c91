// Package deploy places guests — virtual machines with an SLA tier — on
// hypervisor hosts across sites.
//
// This file set is the placement solver. Solve is a pure function from a
// Problem (the guests, the hosts, where guests run now, which guests were
// preempted earlier, which sites and hosts failed) to a Plan that gives every
// guest exactly one Decision, with its reason in plain words. The libvirt
// side (hosts over go-libvirt, the reconciler that carries a Plan out) builds
// on these types.
//
// The rules follow the SLA model of the provider's High Availability paper:
//
//   - Gold-Zone-A and Gold-Zone-B guests never run at the same site;
//     Silver-Zone-A and Silver-Zone-B guests never on the same host. With
//     ScopeCluster (the default) the rules hold across the whole cluster; with
//     ScopeService only guests of the same service exclude each other. Guests
//     without a zone, and bronze guests, are free of them.
//   - No host's capacity (vCPUs and memory, after overcommit) is exceeded.
//     Failed hosts and hosts at failed sites have no capacity.
//   - Gold comes before silver, silver before bronze. When capacity is short
//     a guest may stop (preempt) guests of lower tiers: bronze before silver,
//     as few as possible; gold guests are never stopped. The caller remembers
//     preempted guests (Problem.Preempted) and they come back, ahead of new
//     guests of their tier, when capacity returns.
//   - A running guest on a healthy host that breaks no rule stays where it is.
//     A guest of a failed host is placed in its own site first, then
//     elsewhere.
//
// Solve works in two passes. First every guest that runs on a healthy host
// keeps its place, in priority order, as long as it fits and breaks no zone
// rule. Then the others are placed tier by tier, gold first; within a tier
// those that were running come first, then those preempted earlier, then
// new ones, bigger before smaller. A guest goes to the host with room that
// it leaves tightest (best fit), in its own site first. When no host has
// room it stops guests of lower tiers: bronze ones alone if that is enough
// anywhere, else silver ones too; on the host where the fewest guests stop,
// then the fewest silver ones, then the smallest. Guests stopped that way
// are placed again in their own tier's turn, so a stopped guest moves to
// free room elsewhere when there is some. Every tie is broken by name, so
// the same Problem always gives the same Plan, whatever the order of its
// slices.
package deploy
