// Package speaker announces a site's prefixes to its upstream routers with an
// embedded GoBGP v3 server.
//
// Start validates a Config, starts the server, installs the export policy and
// adds the peers. Apply takes the full set of routes the site must announce
// (prefix and number of prepends) and converges GoBGP's local RIB on it:
// it announces new prefixes, replaces in place the ones whose prepends
// changed and withdraws the ones no longer listed. Routes tells what is
// announced, Peers the state of the sessions, Established signals sessions
// coming up, and Received lists the paths learned from peers, for a speaker
// that plays the upstream in tests and observers. Close stops the server.
//
// # GoBGP facts this package is built on
//
//   - The server's management loop (Serve) must run before any API call, and
//     it never returns: GoBGP v3 has no way to stop it. Close stops BGP
//     (sessions, listeners, RIB), but one idle goroutine per Speaker stays
//     until the process exits.
//   - API calls ignore their context and block until the management loop
//     has handled them. Every call here is run in its own goroutine and
//     bounded by Config.CallTimeout and the caller's context. A call that
//     gives up does not cancel the GoBGP operation: if it was a change of
//     routes, its effect is recorded when GoBGP finally returns, and the next
//     Apply waits for it first (ErrBusy if it is still stuck).
//   - On eBGP export GoBGP adds the local AS once, so a route originated
//     with k copies of the local AS in its AS_PATH (Route.Prepends = k)
//     reaches the upstream with an AS path of k+1. GoBGP keeps one AS_PATH
//     segment up to 255 ASNs, hence MaxPrepends = 254.
//   - Adding a path for a prefix that already has a local path replaces it
//     in place (one UPDATE, no withdrawal in between); Apply uses that when
//     the prepends change.
//   - DeletePath needs the path itself (with its next hop). A request with
//     neither path nor UUID deletes every local path; this package never
//     sends one.
//   - The default export policy accepts everything, which would re-advertise
//     what one upstream sent to all the others. The global export policy is
//     therefore "accept route-type LOCAL, reject the rest": only what this
//     speaker originates leaves it.
//   - Originated paths carry the unspecified next hop (0.0.0.0 or ::); GoBGP
//     replaces it with the session's local address on export (eBGP and
//     iBGP), so the next hop is right on every session without configuring
//     one. IPv6 routes travel as MP_REACH_NLRI.
//   - The default connect retry is 120 s. Peers here default to 5 s. After a
//     session drops, GoBGP also waits a fixed 5 s idle hold before it dials
//     again.
//   - GoBGP v3 has no BFD: a dead session is detected by the hold timer.
//   - StartBgp writes route-selection options into GoBGP package variables
//     that every server in the process reads. Run one Speaker per process;
//     tests that run several start them before sessions come up.
//
// GoBGP's own logs go to Config.Log (named "gobgp") through a pkg/log.Logger
// adapter.
package speaker
