package softswitch

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// openPacketSocket opens a raw packet socket on the interface, in the
// calling thread's network namespace: it reads every frame that arrives
// on the interface (not those sent from it) and writes frames out of it,
// each with a virtio-net header. The socket is non-blocking, read and
// written through Go's poller, so that closing it ends a read.
func openPacketSocket(iface string) (*os.File, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", iface, err)
	}
	opts := []struct {
		name string
		opt  int
	}{
		{"PACKET_VNET_HDR", unix.PACKET_VNET_HDR},
		{"PACKET_IGNORE_OUTGOING", unix.PACKET_IGNORE_OUTGOING},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, o.opt, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("packet socket on %s: %s: %w", iface, o.name, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind a packet socket to %s: %w", iface, err)
	}
	return os.NewFile(uintptr(fd), "packet:"+iface), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
