package speaker

import (
	"errors"
	"testing"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestZapLogger(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := newZapLogger(zap.New(core))

	if got := l.GetLevel(); got != gobgplog.InfoLevel {
		t.Errorf("GetLevel with zap at info = %v, want info", got)
	}
	l.Debug("dropped", nil)
	l.Info("Peer Up", gobgplog.Fields{"Topic": "Peer", "Key": "192.0.2.1", "State": "BGP_FSM_OPENCONFIRM", "Remote Addr": "x"})
	l.Warn("failed to set md5", gobgplog.Fields{"Topic": "Peer", "Key": "192.0.2.1", "Err": errors.New("protocol not available")})
	l.Error("listener", gobgplog.Fields{"Topic": "Config", "Key": "0.0.0.0:179", "Error": "in use"})
	l.Fatal("fatal but alive", nil) // must not exit

	entries := logs.All()
	if len(entries) != 4 {
		t.Fatalf("%d entries, want 4: %v", len(entries), entries)
	}
	want := []struct {
		level  zapcore.Level
		msg    string
		fields map[string]any
	}{
		{zapcore.InfoLevel, "Peer Up", map[string]any{"topic": "Peer", "peer": "192.0.2.1", "state": "BGP_FSM_OPENCONFIRM", "remote_addr": "x"}},
		{zapcore.WarnLevel, "failed to set md5", map[string]any{"topic": "Peer", "peer": "192.0.2.1", "error": "protocol not available"}},
		{zapcore.ErrorLevel, "listener", map[string]any{"topic": "Config", "key": "0.0.0.0:179", "error": "in use"}},
		{zapcore.ErrorLevel, "fatal but alive", map[string]any{"gobgp_level": "fatal"}},
	}
	for i, w := range want {
		e := entries[i]
		if e.Level != w.level || e.Message != w.msg {
			t.Errorf("entry %d = %v %q, want %v %q", i, e.Level, e.Message, w.level, w.msg)
		}
		got := e.ContextMap()
		for k, v := range w.fields {
			if got[k] != v {
				t.Errorf("entry %d field %s = %v, want %v (all: %v)", i, k, got[k], v, got)
			}
		}
	}

	// SetLevel narrows further than zap.
	l.SetLevel(gobgplog.WarnLevel)
	if got := l.GetLevel(); got != gobgplog.WarnLevel {
		t.Errorf("GetLevel after SetLevel(warn) = %v", got)
	}
	l.Info("dropped too", nil)
	if n := logs.Len(); n != 4 {
		t.Errorf("info logged after SetLevel(warn)")
	}

	defer func() {
		if recover() == nil {
			t.Errorf("Panic did not panic")
		}
	}()
	l.Panic("code logic bug", nil)
}
