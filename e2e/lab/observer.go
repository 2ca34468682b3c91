package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// observerDirName is DIR/observer: the route observer's pid file and log.
const observerDirName = "observer"

// startObserver starts the lab's route observer, `zdt observer --config
// DIR/zdt.yaml`, in its own process group like a site. It is the sites'
// upstream: it accepts their BGP sessions on the config's
// bgp.observer.listen and publishes where the best path of every service
// prefix leads into etcd, which it reaches like a controller. It may start
// before etcd is up: it publishes once it is.
func (l *Lab) startObserver() error {
	if err := os.MkdirAll(filepath.Join(l.dir, observerDirName), 0o755); err != nil {
		return fmt.Errorf("start %s: %w", observerProc, err)
	}
	return l.start(observerProc, l.binary, []string{"observer", "--config", l.ConfigPath()}, l.env)
}

// isObserver reports whether pid is a live `zdt observer` for this config.
func isObserver(pid int, configPath string) bool {
	args := cmdline(pid)
	if len(args) < 2 {
		return false
	}
	args = args[1:]
	return slices.Contains(args, "observer") && flagValue(args, "--config") == configPath
}
