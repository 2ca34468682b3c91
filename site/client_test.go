package site

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// TestRequireLeader: every request asks for a leader; one that members
// refuse for want of a leader goes out again until one takes it, and any
// other error, or the end of the context, ends it.
func TestRequireLeader(t *testing.T) {
	invoker := func(answers ...error) (grpc.UnaryInvoker, *int) {
		calls := 0
		return func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
			md, _ := metadata.FromOutgoingContext(ctx)
			if got := md.Get(rpctypes.MetadataRequireLeaderKey); len(got) != 1 || got[0] != rpctypes.MetadataHasLeader {
				t.Errorf("request without %s: %v", rpctypes.MetadataRequireLeaderKey, md)
			}
			err := answers[min(calls, len(answers)-1)]
			calls++
			return err
		}, &calls
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	inv, calls := invoker(rpctypes.ErrGRPCNoLeader, rpctypes.ErrGRPCNoLeader, nil)
	if err := requireLeader(ctx, "/etcdserverpb.KV/Range", nil, nil, nil, inv); err != nil || *calls != 3 {
		t.Errorf("refused twice, then taken: %v after %d calls; want nil after 3", err, *calls)
	}
	other := errors.New("etcdserver: request timed out")
	inv, calls = invoker(other)
	if err := requireLeader(ctx, "/etcdserverpb.KV/Put", nil, nil, nil, inv); !errors.Is(err, other) || *calls != 1 {
		t.Errorf("another error: %v after %d calls; want it after 1", err, *calls)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	inv, calls = invoker(rpctypes.ErrGRPCNoLeader)
	if err := requireLeader(short, "/etcdserverpb.KV/Put", nil, nil, nil, inv); rpctypes.ErrorDesc(err) != rpctypes.ErrNoLeader.Error() || *calls < 2 {
		t.Errorf("no leader ever: %v after %d calls; want no leader after a few", err, *calls)
	}
}
