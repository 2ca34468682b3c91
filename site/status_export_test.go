package site

// ReadEtcdMembers lets the tests read the members they name.
var ReadEtcdMembers = readEtcdMembers

// KnownDown says, from the start, that the sites named are down.
func KnownDown(names ...string) *downSites {
	d := &downSites{known: make(chan struct{}), down: map[string]bool{}}
	for _, n := range names {
		d.down[n] = true
	}
	close(d.known)
	return d
}
