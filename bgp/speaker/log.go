package speaker

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLogger carries GoBGP's logs (pkg/log.Logger) into a zap logger.
//
// GoBGP's levels map to zap's of the same name. Fatal is logged at Error and
// does not exit: a library must not end the process, and GoBGP only calls it
// from its gRPC server and config file loader, neither of which is used here.
// Panic logs and panics, as GoBGP expects ("code logic bug").
//
// Field names are made stable: "Topic" becomes "topic", "Key" (the
// neighbor address in the Peer topic) becomes "peer", "Err"/"Error" become
// "error", and other names are lower-cased with spaces replaced by "_".
type zapLogger struct {
	z *zap.Logger
	// level is the most verbose GoBGP level SetLevel allows. GoBGP checks
	// GetLevel before building costly debug messages.
	level atomic.Uint32
}

var _ gobgplog.Logger = (*zapLogger)(nil)

func newZapLogger(z *zap.Logger) *zapLogger {
	l := &zapLogger{z: z}
	l.level.Store(uint32(gobgplog.DebugLevel))
	return l
}

func (l *zapLogger) Panic(msg string, fields gobgplog.Fields) {
	l.z.Panic(msg, zapFields(fields)...)
}

func (l *zapLogger) Fatal(msg string, fields gobgplog.Fields) {
	l.log(gobgplog.FatalLevel, zapcore.ErrorLevel, msg, fields, zap.String("gobgp_level", "fatal"))
}

func (l *zapLogger) Error(msg string, fields gobgplog.Fields) {
	l.log(gobgplog.ErrorLevel, zapcore.ErrorLevel, msg, fields)
}

func (l *zapLogger) Warn(msg string, fields gobgplog.Fields) {
	l.log(gobgplog.WarnLevel, zapcore.WarnLevel, msg, fields)
}

func (l *zapLogger) Info(msg string, fields gobgplog.Fields) {
	l.log(gobgplog.InfoLevel, zapcore.InfoLevel, msg, fields)
}

func (l *zapLogger) Debug(msg string, fields gobgplog.Fields) {
	l.log(gobgplog.DebugLevel, zapcore.DebugLevel, msg, fields)
}

func (l *zapLogger) SetLevel(level gobgplog.LogLevel) { l.level.Store(uint32(level)) }

// GetLevel reports the most verbose level that both SetLevel and the zap
// logger let through, so GoBGP skips work for messages that would be dropped.
func (l *zapLogger) GetLevel() gobgplog.LogLevel {
	set := gobgplog.LogLevel(l.level.Load())
	for _, c := range []struct {
		g gobgplog.LogLevel
		z zapcore.Level
	}{
		{gobgplog.DebugLevel, zapcore.DebugLevel},
		{gobgplog.InfoLevel, zapcore.InfoLevel},
		{gobgplog.WarnLevel, zapcore.WarnLevel},
		{gobgplog.ErrorLevel, zapcore.ErrorLevel},
	} {
		if c.g <= set && l.z.Core().Enabled(c.z) {
			return c.g
		}
	}
	return min(set, gobgplog.ErrorLevel)
}

func (l *zapLogger) log(g gobgplog.LogLevel, z zapcore.Level, msg string, fields gobgplog.Fields, extra ...zap.Field) {
	if g > gobgplog.LogLevel(l.level.Load()) {
		return
	}
	ce := l.z.Check(z, msg)
	if ce == nil {
		return
	}
	ce.Write(append(zapFields(fields), extra...)...)
}

// zapFields converts GoBGP's fields, sorted by name for a stable output.
func zapFields(fields gobgplog.Fields) []zap.Field {
	if len(fields) == 0 {
		return nil
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	peerTopic := fields["Topic"] == "Peer"
	out := make([]zap.Field, 0, len(fields))
	for _, k := range keys {
		v := fields[k]
		switch k {
		case "Key":
			if peerTopic {
				out = append(out, zap.String("peer", fmt.Sprint(v)))
				continue
			}
		case "Err", "Error":
			if err, ok := v.(error); ok {
				out = append(out, zap.Error(err))
			} else {
				out = append(out, zap.String("error", fmt.Sprint(v)))
			}
			continue
		case gobgplog.FieldFacility:
			out = append(out, zap.Any("facility", v))
			continue
		}
		out = append(out, zap.Any(fieldName(k), v))
	}
	return out
}

func fieldName(k string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), " ", "_")
}
