package postgres

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// RemoveSharedMemory removes the System V shared memory segment that a
// postmaster killed with SIGKILL leaves behind (its id is on line 7 of
// postmaster.pid in dataDir). Call it only once every process of that
// server is gone: then nobody is attached. It does nothing when there is no
// such segment. For supervisors (the lab, test harnesses) that kill servers.
func RemoveSharedMemory(dataDir string) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 7 {
		return
	}
	f := strings.Fields(lines[6])
	if len(f) != 2 {
		return
	}
	if id, err := strconv.Atoi(f[1]); err == nil {
		const ipcRmid = 0
		_, _, _ = syscall.Syscall(syscall.SYS_SHMCTL, uintptr(id), ipcRmid, 0)
	}
}
