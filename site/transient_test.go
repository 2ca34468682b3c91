package site_test

import (
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/zdt-project/zdt/site"
)

func TestTransient(t *testing.T) {
	for err, want := range map[error]bool{
		fmt.Errorf("read cluster state: %w", rpctypes.ErrLeaderChanged): true,
		rpctypes.ErrNoLeader:                     true,
		rpctypes.ErrGRPCNoLeader:                 true,
		rpctypes.ErrTimeoutDueToLeaderFail:       true,
		rpctypes.ErrPermissionDenied:             false,
		errors.New("context deadline exceeded"):  false,
		fmt.Errorf("x: %w", rpctypes.ErrNoSpace): false,
	} {
		if got := site.Transient(err); got != want {
			t.Errorf("Transient(%v) = %t, want %t", err, got, want)
		}
	}
}
