package config

import (
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Rules shared by several sections.

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

const (
	maxNameLen = 63
	nameRule   = "must be lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters"
)

// checkName reports a name (of the cluster, a site, a service) that breaks
// the name rule; names end up in etcd keys, so the rule is strict.
func (c *checker) checkName(field, name string) bool {
	if validName(name) {
		return true
	}
	c.add(field, "%q is not a valid name: %s", name, nameRule)
	return false
}

func validName(name string) bool {
	return len(name) <= maxNameLen && nameRe.MatchString(name)
}

// checkURL reports an etcd URL that is not http(s)://host:port and
// returns the URL if it is.
func (c *checker) checkURL(field, raw string) (*url.URL, bool) {
	if !strings.Contains(raw, "://") {
		c.add(field, "%q must be a URL starting with http:// or https://, like https://10.0.0.1:2379", raw)
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		c.add(field, "%q is not a valid URL: %v", raw, err)
		return nil, false
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		c.add(field, "%q must start with http:// or https://", raw)
	case u.Opaque != "" || u.Hostname() == "":
		c.add(field, "%q has no host; write it like https://10.0.0.1:2379", raw)
	case u.Port() == "":
		c.add(field, "%q has no port; add one (etcd uses 2379 for clients, 2380 for peers)", raw)
	case !validPort(u.Port()):
		c.add(field, "%q: port %q must be a number from 1 to 65535", raw, u.Port())
	case u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		c.add(field, "%q must be only scheme, host and port (etcd refuses a path); write %s://%s", raw, u.Scheme, u.Host)
	default:
		return u, true
	}
	return nil, false
}

// checkHostPort reports an address that is not host:port with a numeric
// port.
func (c *checker) checkHostPort(field, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		c.add(field, "%q is not host:port: %v; write it like 10.0.0.1:7480", addr, err)
		return false
	}
	if host == "" {
		c.add(field, "%q has no host; other sites and the CLI connect to it, so give the address, like 10.0.0.1%s", addr, addr)
		return false
	}
	if !validPort(port) {
		c.add(field, "%q: port %q must be a number from 1 to 65535", addr, port)
		return false
	}
	return true
}

func validPort(port string) bool {
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0
}

// addressKey is what two listeners must not share: the host and port,
// compared without case.
func addressKey(host, port string) string {
	return net.JoinHostPort(strings.ToLower(host), port)
}

// absPath resolves a path from the file against the file's directory.
func (c *checker) absPath(p string) string {
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.dir, p)
}

// checkFile resolves a path from the file and reports it unless it is a
// readable regular file. It returns the absolute path.
func (c *checker) checkFile(field, p string) string {
	abs := c.absPath(p)
	if err := readable(abs); err != nil {
		c.add(field, "cannot read %s: %v", abs, err)
	}
	return abs
}

// readFile reads a regular file, with the errors readable gives.
func readFile(p string) ([]byte, error) {
	if err := regular(p); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, pathErr(err)
	}
	return data, nil
}

// regular says why p is not a regular file, nil if it is. It does not open
// it: opening a FIFO would wait for a writer.
func regular(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return pathErr(err)
	}
	switch {
	case fi.IsDir():
		return errors.New("is a directory")
	case !fi.Mode().IsRegular():
		return errors.New("not a regular file")
	}
	return nil
}

func readable(p string) error {
	if err := regular(p); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return pathErr(err)
	}
	return f.Close()
}

// pathErr strips the operation and path from err; the message names the
// path already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkUniqueName checks a required, valid name that must not repeat among
// seen (name to the field that first gave it); kind names the thing ("site")
// and example says what to write when it is missing.
func (c *checker) checkUniqueName(field, name, kind, example string, seen map[string]string) {
	switch {
	case name == "":
		c.add(field, "required: %s", example)
	case !c.checkName(field, name):
	case seen[name] != "":
		c.add(field, "duplicate %s %q (also at line %d)", kind, name, c.line(seen[name]))
	default:
		seen[name] = field
	}
}
