// Package config loads and validates the one YAML file that describes a
// whole zdt cluster: its name, how to reach etcd, the timings of leases and
// self-fencing, the sites and the services that fail over between them.
//
// Load and Parse decode the file strictly (unknown fields are errors) into
// unexported fileXxx types that mirror the YAML, validate everything, and
// only then build the exported domain types (Cluster, Site, Service, ...)
// that the rest of the program uses: durations are time.Duration, prefixes
// netip.Prefix, file names absolute paths. YAML types never leave the
// package.
//
// A config with any problem yields no Cluster at all. The error is a
// Problems value that lists every problem found, each with the file, the
// line and the field path (for example services[1].prefixes[0]), so an
// operator can fix them all in one pass:
//
//	c, err := config.Load(path)
//	var problems config.Problems
//	if errors.As(err, &problems) {
//		// report problems, one per line
//	}
//
// Each section of the file lives in its own source file (cluster.go,
// etcd.go, timings.go, sites.go, services.go): a file type, a domain type
// and a build method that validates the one and returns the other.
package config
