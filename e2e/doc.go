// Package e2e holds zdt's end-to-end tests. They build the zdt binary, run
// a whole cluster with it (package lab, in e2e/lab, runs the three-site lab)
// and drive it the way an operator would: through the CLI, checking what
// the cluster records in etcd.
//
// They take a while: `go test -short` skips them.
package e2e
