package fabric

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InstallHint says how to get what this package runs on Debian.
const InstallHint = "apt-get install -y --no-install-recommends iproute2 frr"

// need skips the test when err is not nil, or fails it when CI=true.
func need(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %v", err)
	}
	t.Skipf("%v; skipping", err)
}

// checkNetwork reports what is missing to build a Fabric: root (for
// network namespaces) and the ip binary.
func checkNetwork() error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, fmt.Errorf("not root (euid %d): network namespaces need root; run the test as root", os.Geteuid()))
	}
	if _, err := lookPath("ip", "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"); err != nil {
		errs = append(errs, fmt.Errorf("ip is not installed (%s)", InstallHint))
	}
	return errors.Join(errs...)
}

// checkFRR reports whether FRR's daemons are installed.
func checkFRR() error {
	var errs []error
	for _, p := range []string{bgpdPath, zebraPath} {
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("%s is missing: FRR is not installed (%s)", p, InstallHint))
			break
		}
	}
	return errors.Join(errs...)
}

// ipBinary is the path of ip, or "ip" to fail later with a clear error.
func ipBinary() string {
	p, err := lookPath("ip", "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip")
	if err != nil {
		return "ip"
	}
	return p
}

func lookPath(name string, fallbacks ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range fallbacks {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}
