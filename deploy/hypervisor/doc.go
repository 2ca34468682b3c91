// Package hypervisor drives the hypervisor hosts of a site over libvirt's
// RPC protocol (github.com/digitalocean/go-libvirt, no cgo).
//
// A Host is one libvirt connection, named by a URI as operators write
// them: qemu+unix:///system, test+unix:///default?socket=/run/zdt/a1.sock,
// qemu+tcp://10.0.0.5/system. ParseURI turns it into the transport to dial
// and the URI to open at the daemon; the unix and tcp transports are
// supported, tls and ssh are not yet.
//
// Dial keeps ONE connection open for as long as the Host lives (the test
// driver's state lives only while a connection stays open) and, when it
// breaks, opens a new one with backoff. The connection is probed once the
// host has been silent for FailAfter/2 (any answer counts, so a host that
// is busy answering calls is not probed); a probe that gets no answer
// within FailAfter/2 counts as a broken connection, so a daemon that hangs
// is noticed, at FailAfter, as well as one that dies. A host that has not answered for longer than FailAfter reports
// Failed; Watch (or Await) gives the deploy reconciler a channel that is
// closed when Connected or Failed change, so it need not poll.
//
// Every operation takes a context and respects it: go-libvirt's calls do not
// take one and may block on a dead connection, so each runs in a goroutine
// that ends with its answer or with the connection. Calls made while the host
// is disconnected fail at once with an error that wraps ErrUnavailable. The
// operations are idempotent, so a reconciler may repeat them: Define
// replaces an existing definition of the same domain, Start leaves a running
// domain (and resumes a paused one), Suspend leaves a paused or stopped one,
// Resume a running one, Shutdown and Destroy leave a stopped one, Undefine
// leaves an undefined one. A domain that does not exist is ErrNoDomain. Errors name the
// operation, the domain and the host.
//
// The package deals in names, states and sizes (Domain); domain XML stays
// the caller's (from the shared volume or a template) and is only read for
// its name and UUID. deploy's placement solver sizes hosts from Capacity and
// guests from List.
//
// Tests run real libvirtd daemons with the test driver (libvirtdtest).
package hypervisor
