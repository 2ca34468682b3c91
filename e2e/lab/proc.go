package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// pidFileName holds the pid of a site's controller while it runs.
const pidFileName = "pid"

func readPIDFile(siteDir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(siteDir, pidFileName))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: not a pid: %q", filepath.Join(siteDir, pidFileName), data)
	}
	return pid, nil
}

func writePIDFile(siteDir string, pid int) error {
	return writeFileAtomic(filepath.Join(siteDir, pidFileName), []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

func removePIDFile(siteDir string) error {
	err := os.Remove(filepath.Join(siteDir, pidFileName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the pid file: %w", err)
	}
	return nil
}

// isController reports whether pid is a live process running `zdt
// controller` for this config and site. The command line guards against a
// pid reused by another process; a zombie has none, so it does not count.
func isController(pid int, configPath, site string) bool {
	args := cmdline(pid)
	if len(args) < 2 {
		return false
	}
	args = args[1:] // the binary may have been replaced or renamed since
	return slices.Contains(args, "controller") &&
		flagValue(args, "--config") == configPath &&
		flagValue(args, "--site") == site
}

// cmdline is the command line of a live process, nil for a zombie or a
// process that is gone.
func cmdline(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

// flagValue finds "--name value" or "--name=value" in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// hasExited reports whether pid is gone or a zombie waiting to be reaped.
func hasExited(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain ") ".
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state == 'Z' || state == 'X' || state == 'x'
}
