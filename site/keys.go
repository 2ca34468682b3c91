package site

import "strings"

// Keys is the etcd key schema of one cluster. The zero value is not usable;
// build it with NewKeys.
type Keys struct {
	root string // "/zdt/<cluster>/"
}

// NewKeys returns the key schema for the named cluster.
func NewKeys(cluster string) Keys { return Keys{root: "/zdt/" + cluster + "/"} }

// Root is the prefix under which all of the cluster's state lives.
func (k Keys) Root() string { return k.root }

// Sites is the prefix of every site's keys.
func (k Keys) Sites() string { return k.root + "sites/" }

// Alive is the lease-bound key whose presence says the site is up.
func (k Keys) Alive(site string) string { return k.Sites() + site + "/alive" }

// Beats is the prefix of the sites' beat keys.
func (k Keys) Beats() string { return k.root + "beats/" }

// Beat is the lease-bound key a site rewrites with every renewal of its
// lease: its mod revision changes whenever the site renewed, which every
// other site sees, whoever leads etcd. Nothing else watches it.
func (k Keys) Beat(site string) string { return k.Beats() + site }

// BeatSite is the site of a key under Beats().
func (k Keys) BeatSite(key string) string { return strings.TrimPrefix(key, k.Beats()) }

// Registered is written once, when the site first joins the cluster.
func (k Keys) Registered(site string) string { return k.Sites() + site + "/registered" }

// Report holds what the site's controller observes about itself.
func (k Keys) Report(site string) string { return k.Sites() + site + "/report" }

// Drain is the drain record of a site (zdt evacuate).
func (k Keys) Drain(site string) string { return k.Sites() + site + "/drain" }

// Fences is the prefix of the fence records.
func (k Keys) Fences() string { return k.root + "fences/" }

// Fence is the fence record of one site.
func (k Keys) Fence(site string) string { return k.Fences() + site }

// Services is the prefix of the service records.
func (k Keys) Services() string { return k.root + "services/" }

// Assignment is the key of a service's assignment.
func (k Keys) Assignment(service string) string { return k.Services() + service + "/assignment" }

// Move is the key of the record of a service's planned move.
func (k Keys) Move(service string) string { return k.Services() + service + "/move" }

// Guests is the prefix of the guest records.
func (k Keys) Guests() string { return k.root + "guests/" }

// Placement is the key of a guest's placement.
func (k Keys) Placement(guest string) string { return k.Guests() + guest + "/placement" }

// Hosts is the header of what a site's deploy reconciler observes of its
// hypervisors; each host has its own record (SiteHost).
func (k Keys) Hosts(site string) string { return k.Sites() + site + "/hosts" }

// hostLeaf starts the leaf of a site's host records.
const hostLeaf = "host/"

// SiteHostPrefix is the prefix of the site's host records.
func (k Keys) SiteHostPrefix(site string) string { return k.Sites() + site + "/" + hostLeaf }

// SiteHost is the key of what the site observes of one of its hosts.
func (k Keys) SiteHost(site, host string) string { return k.SiteHostPrefix(site) + host }

// SiteBGP is the key of the site's BGP report: its peers, its service
// addresses, what it could not do.
func (k Keys) SiteBGP(site string) string { return k.Sites() + site + "/bgp" }

// announcedLeaf starts the leaf of a site's announcement records.
const announcedLeaf = "bgp-announced/"

// SiteAnnouncedPrefix is the prefix of the site's announcement records,
// one per service (SiteAnnounced).
func (k Keys) SiteAnnouncedPrefix(site string) string { return k.Sites() + site + "/" + announcedLeaf }

// SiteAnnounced is the key of what the site announces of the service's
// prefixes.
func (k Keys) SiteAnnounced(site, service string) string {
	return k.SiteAnnouncedPrefix(site) + service
}

// SiteReplication is the key of the site's replication report: the status
// of its replication members.
func (k Keys) SiteReplication(site string) string { return k.Sites() + site + "/replication" }

// Upstream is the prefix of the route observer's records, one per service
// prefix.
func (k Keys) Upstream() string { return k.root + "upstream/" }

// ObserverBeat is the key of the route observer's sign of life (held under
// a lease; see Store.HoldObserverBeat). It is outside Upstream, so that
// reading the records does not read it.
func (k Keys) ObserverBeat() string { return k.root + "observer-beat" }

// UpstreamRoute is the key of one prefix's observer record ('/' is written
// as '_': 203.0.113.0_26).
func (k Keys) UpstreamRoute(prefix string) string {
	return k.Upstream() + strings.ReplaceAll(prefix, "/", "_")
}

// upstreamPrefix is the prefix whose observer record key is (the inverse
// of UpstreamRoute).
func (k Keys) upstreamPrefix(key string) string {
	return strings.ReplaceAll(strings.TrimPrefix(key, k.Upstream()), "_", "/")
}

// Ops is the prefix of the op journal.
func (k Keys) Ops() string { return k.root + "ops/" }

// Drills holds each site's last drill (DrillRecord), keyed by site.
func (k Keys) Drills() string { return k.root + "drills/" }

// Drill is the key of a site's last drill.
func (k Keys) Drill(site string) string { return k.Drills() + site }

// Op is the journal key of one op.
func (k Keys) Op(id string) string { return k.Ops() + id }

// Events is the prefix of the event log.
func (k Keys) Events() string { return k.root + "events/" }

// Election is the prefix the coordinator election campaigns under.
func (k Keys) Election() string { return k.root + "election/" }

// DefragLock is the prefix of the lock a controller holds while it
// defragments its site's etcd member (package etcdmaint), so that one
// member of the cluster at a time stops serving for it.
func (k Keys) DefragLock() string { return k.root + "locks/defrag" }

// siteKey splits a key under Sites() into the site and the rest
// ("a", "alive"); ok is false for any other key.
func (k Keys) siteKey(key string) (site, leaf string, ok bool) {
	rest, found := strings.CutPrefix(key, k.Sites())
	if !found {
		return "", "", false
	}
	site, leaf, ok = strings.Cut(rest, "/")
	return site, leaf, ok
}
