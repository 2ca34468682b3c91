// Package membership keeps a site's controller in the cluster: it holds the
// site's lease-bound alive key, renews the lease in its own loop and fences
// the site itself before the lease can expire at the etcd majority.
//
// The self-fence deadline is measured from when a renewal was sent, not from
// when its answer came back: the lease cannot expire at the leader before
// send time + granted TTL, so a controller that has not renewed by send time
// + TTL - margin stops serving at least margin before any other site can
// declare it dark. This is why the member renews with KeepAliveOnce and not
// with the client's background keep-alive, which hides the send time.
//
// A renewal goes out on every tick of the renew interval even while earlier
// ones are still under way, each may take until the lease could expire, and
// one that fails goes out again at once: a renewal has the whole window of
// lease TTL - margin - renew interval to come back, not one interval, so a
// slow raft round to a leader at another site or a starved CPU does not
// fence a healthy site (see renewPlan).
//
// The member tells the site's reconcilers of every change of state through
// one hook (Config.OnChange), and publishes its state in the site's report.
package membership
