package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "76221b7aa1f0c2d3e4f5a6b7c8d9e0f1a2b3c4d5"},
		{Key: "vcs.time", Value: "2026-12-03T05:50:03Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	if got, want := buildVersion(info, true).String(), "zdt v1.2.0 commit 76221b7aa1f0 (modified) of 2026-12-03T05:50:03Z, go1.26.8"; got != want {
		t.Errorf("version %q, want %q", got, want)
	}
	if got := buildVersion(nil, false).String(); got != "zdt unknown" {
		t.Errorf("without build information: %q", got)
	}
	out, err := runZDT(t, "version")
	if err != nil || !strings.HasPrefix(out, "zdt ") || !strings.Contains(out, "go1.") {
		t.Errorf("zdt version: %q, %v", out, err)
	}
	if _, err := runZDT(t, "version", "-o", "yaml"); err == nil || exitCode(err) != 2 {
		t.Errorf("zdt version -o yaml: %v, want a usage error", err)
	}
}
