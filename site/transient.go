package site

import (
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Transient says whether an etcd error passes by itself: the leader
// changed, or there is none for a moment (an election). A read that failed
// so is worth trying again at once; it says nothing about the quorum.
func Transient(err error) bool {
	for _, e := range []error{rpctypes.ErrLeaderChanged, rpctypes.ErrNoLeader, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrGRPCLeaderChanged, rpctypes.ErrGRPCNoLeader} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
