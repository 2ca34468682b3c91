// Package failstatic tells "etcd failed" from "this site is cut off".
//
// A controller that cannot renew its lease fences itself before the lease
// can expire, because a working etcd majority may be fencing the site and
// moving its services. When etcd itself has failed (quorum lost while
// every site and the network between them are fine, or etcd refusing
// writes at its database quota), nobody can fence or move anything, and a
// self-fence everywhere would be an outage caused by the coordination
// layer alone. So before its deadline the controller asks every other
// site's controller directly, over mutual TLS, what its etcd member sees.
// It keeps serving ("fails static") only if every site answers, no member
// follows a leader that takes writes, no coordinator has an op under way,
// and every site has paused its sweeper until it beats again (the pledge).
// Anything else, a silent site above all, is doubt, and doubt self-fences.
//
// The package holds the question and its answer (View), the pure decision
// over the answers (Decide), and the mutual-TLS transport both ways. The
// timing argument that makes a verdict safe for a while is in
// docs/design.md, "Fail static".
package failstatic
