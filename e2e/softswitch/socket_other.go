//go:build !linux

package softswitch

import (
	"errors"
	"os"
)

const (
	vnetHdrLen = 10
	ethHdrLen  = 14
	maxFrame   = 256 << 10
)

func openPacketSocket(string) (*os.File, error) {
	return nil, errors.New("a switch needs Linux packet sockets")
}
