//go:build !linux

package softswitch

import (
	"errors"
	"os"
)

func openPacketSocket(string) (*os.File, error) {
	return nil, errors.New("a switch needs Linux packet sockets")
}
