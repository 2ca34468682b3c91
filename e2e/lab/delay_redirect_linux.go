package lab

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// delayMark marks the sockets of the delay lines' own connections to the
// members, which the redirect must let through.
const delayMark = 0x7a64656c // "zdel"

// connectRedirect steers TCP connects to some addresses to others: a
// cgroup BPF program (cgroup/connect4) that rewrites the destination port
// of connect() in every process of this process's cgroup (and the cgroups
// below it), which is where the lab's controllers run. Sockets marked with
// delayMark are let through. It is detached when Close closes its link, or
// when this process ends.
type connectRedirect struct {
	prog, link int
}

// redirectConnects starts steering connects to every key of to (an
// address and port of the same IPv4 address, the port differing) to its
// value. It needs root (CAP_BPF and CAP_NET_ADMIN) and cgroup v2.
func redirectConnects(to map[netip.AddrPort]netip.AddrPort) (*connectRedirect, error) {
	insns, err := redirectProgram(to)
	if err != nil {
		return nil, err
	}
	cgroup, err := ownCgroup2()
	if err != nil {
		return nil, err
	}
	dir, err := os.Open(cgroup)
	if err != nil {
		return nil, fmt.Errorf("open this process's cgroup: %w", err)
	}
	defer dir.Close()

	prog, err := loadConnect4(insns)
	if err != nil {
		return nil, err
	}
	// struct bpf_attr for BPF_LINK_CREATE: prog_fd, target_fd,
	// attach_type, flags.
	var attr [64]byte
	binary.LittleEndian.PutUint32(attr[0:], uint32(prog))
	binary.LittleEndian.PutUint32(attr[4:], uint32(dir.Fd()))
	binary.LittleEndian.PutUint32(attr[8:], unix.BPF_CGROUP_INET4_CONNECT)
	link, err := bpf(unix.BPF_LINK_CREATE, attr[:])
	if err != nil {
		unix.Close(prog)
		return nil, fmt.Errorf("attach the connect redirect to cgroup %s: %w", cgroup, err)
	}
	return &connectRedirect{prog: prog, link: link}, nil
}

// Close stops the redirect: connects go where they were meant to again.
func (r *connectRedirect) Close() error {
	return errors.Join(unix.Close(r.link), unix.Close(r.prog))
}

// loadConnect4 loads a program of type cgroup/sock_addr for
// cgroup/connect4.
func loadConnect4(insns []byte) (int, error) {
	license := []byte("GPL\x00")
	log := make([]byte, 16<<10)
	// struct bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns,
	// license, log_level, log_size, log_buf, kern_version, prog_flags,
	// prog_name[16], prog_ifindex, expected_attach_type.
	var attr [128]byte
	binary.LittleEndian.PutUint32(attr[0:], unix.BPF_PROG_TYPE_CGROUP_SOCK_ADDR)
	binary.LittleEndian.PutUint32(attr[4:], uint32(len(insns)/8))
	binary.LittleEndian.PutUint64(attr[8:], uint64(uintptr(unsafe.Pointer(&insns[0]))))
	binary.LittleEndian.PutUint64(attr[16:], uint64(uintptr(unsafe.Pointer(&license[0]))))
	binary.LittleEndian.PutUint32(attr[24:], 1)
	binary.LittleEndian.PutUint32(attr[28:], uint32(len(log)))
	binary.LittleEndian.PutUint64(attr[32:], uint64(uintptr(unsafe.Pointer(&log[0]))))
	copy(attr[48:64], "zdt_lab_delay")
	binary.LittleEndian.PutUint32(attr[68:], unix.BPF_CGROUP_INET4_CONNECT)
	fd, err := bpf(unix.BPF_PROG_LOAD, attr[:])
	runtime.KeepAlive(insns)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	if err != nil {
		msg := strings.TrimRight(string(log), "\x00")
		if errors.Is(err, unix.EPERM) {
			return 0, fmt.Errorf("load the connect redirect (a cgroup BPF program): %w; the delay lines need root", err)
		}
		return 0, fmt.Errorf("load the connect redirect (a cgroup BPF program): %w: %s", err, msg)
	}
	return fd, nil
}

func bpf(cmd int, attr []byte) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	runtime.KeepAlive(attr)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// ownCgroup2 is the directory of this process's cgroup in the cgroup v2
// hierarchy (on its own at /sys/fs/cgroup, or beside v1 at
// /sys/fs/cgroup/unified).
func ownCgroup2() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("find this process's cgroup: %w", err)
	}
	var path string
	found := false
	for line := range strings.Lines(string(data)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			path, found = p, true
		}
	}
	if !found {
		return "", fmt.Errorf("%w: this process is in none (no 0:: line in /proc/self/cgroup)", errNoCgroup2)
	}
	mounts, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "", fmt.Errorf("find the cgroup v2 mount: %w", err)
	}
	defer mounts.Close()
	sc := bufio.NewScanner(mounts)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[2] == "cgroup2" {
			return filepath.Join(f[1], path), nil
		}
	}
	return "", fmt.Errorf("%w: it is not mounted", errNoCgroup2)
}

// errNoCgroup2: the delay lines need cgroup v2.
var errNoCgroup2 = errors.New("the delay lines need cgroup v2")

// BPF instruction classes and operations, as the kernel's
// include/uapi/linux/bpf.h numbers them.
const (
	bpfLdxMemW    = 0x61 // dst = *(u32 *)(src + off)
	bpfLdxMemDW   = 0x79 // dst = *(u64 *)(src + off)
	bpfStxMemW    = 0x63 // *(u32 *)(dst + off) = src
	bpfMov32Imm   = 0xb4 // (u32) dst = imm
	bpfMov64Imm   = 0xb7 // dst = imm
	bpfJmp32JeqK  = 0x16 // if (u32) dst == imm goto pc + off
	bpfJa         = 0x05 // goto pc + off
	bpfExit       = 0x95
	sockAddrIP4   = 4  // offsetof(struct bpf_sock_addr, user_ip4)
	sockAddrPort  = 24 // offsetof(struct bpf_sock_addr, user_port)
	sockAddrSk    = 64 // offsetof(struct bpf_sock_addr, sk)
	bpfSockMark   = 16 // offsetof(struct bpf_sock, mark)
	maxRedirects  = 64
	instSize      = 8
	instsPerRoute = 6
)

type insn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

// redirectProgram is, for routes from → to:
//
//	if ctx->sk->mark == delayMark: return 1
//	for each route:
//	    if ctx->user_ip4 == from.ip && ctx->user_port == from.port:
//	        ctx->user_port = to.port
//	return 1 (let the connect go on)
func redirectProgram(routes map[netip.AddrPort]netip.AddrPort) ([]byte, error) {
	if len(routes) == 0 || len(routes) > maxRedirects {
		return nil, fmt.Errorf("%d redirects; want 1 to %d", len(routes), maxRedirects)
	}
	p := []insn{
		{op: bpfLdxMemW, dst: 2, src: 1, off: sockAddrIP4},
		{op: bpfLdxMemW, dst: 3, src: 1, off: sockAddrPort},
		{op: bpfLdxMemDW, dst: 4, src: 1, off: sockAddrSk},
		{op: bpfLdxMemW, dst: 5, src: 4, off: bpfSockMark},
		{op: bpfJmp32JeqK, dst: 5, off: int16(instsPerRoute * len(routes)), imm: int32(uint32(delayMark))},
	}
	for from, to := range routes {
		if !from.Addr().Is4() || to.Addr() != from.Addr() {
			return nil, fmt.Errorf("redirect %s to %s: want one IPv4 address, another port", from, to)
		}
		ip := from.Addr().As4()
		p = append(p,
			insn{op: bpfJmp32JeqK, dst: 2, off: 1, imm: int32(binary.LittleEndian.Uint32(ip[:]))},
			insn{op: bpfJa, off: 4}, // another address: the next route
			insn{op: bpfJmp32JeqK, dst: 3, off: 1, imm: int32(networkPort(from.Port()))},
			insn{op: bpfJa, off: 2}, // another port: the next route
			insn{op: bpfMov32Imm, dst: 6, imm: int32(networkPort(to.Port()))},
			insn{op: bpfStxMemW, dst: 1, src: 6, off: sockAddrPort},
		)
	}
	p = append(p,
		insn{op: bpfMov64Imm, dst: 0, imm: 1},
		insn{op: bpfExit},
	)
	out := make([]byte, 0, instSize*len(p))
	for _, in := range p {
		out = append(out, in.op, in.dst|in.src<<4)
		out = binary.LittleEndian.AppendUint16(out, uint16(in.off))
		out = binary.LittleEndian.AppendUint32(out, uint32(in.imm))
	}
	return out, nil
}

// networkPort is a port as the kernel keeps it in user_port: in network
// byte order in the low 16 bits, read as a little-endian u32.
func networkPort(p uint16) uint32 { return uint32(p>>8) | uint32(p&0xff)<<8 }

// markSocket marks a delay line's socket so that the redirect lets its
// connect through.
func markSocket(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, delayMark)
}
