package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFromEnvironment: a command without --config reads the config
// $ZDT_CONFIG names; --config wins over it.
func TestConfigFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	fromEnv := filepath.Join(dir, "from-env.yaml")
	t.Setenv(configEnv, fromEnv)
	for _, args := range [][]string{{"status"}, {"ops", "list"}, {"runbook", "plan", "site-switchover"}, {"switchover", "--service", "db", "--to", "b"}} {
		_, err := runZDT(t, args...)
		if err == nil || !strings.Contains(err.Error(), fromEnv+": cannot read the cluster config") || exitCode(err) != 2 {
			t.Errorf("zdt %s with %s set: %v (exit %d); want it to read %s", strings.Join(args, " "), configEnv, err, exitCode(err), fromEnv)
		}
	}
	flag := filepath.Join(dir, "from-flag.yaml")
	if _, err := runZDT(t, "status", "--config", flag); err == nil || !strings.Contains(err.Error(), flag+": cannot read") {
		t.Errorf("zdt status --config %s with %s set: %v; want the flag's file", flag, configEnv, err)
	}
}

// TestDefaultConfig: without --config and $ZDT_CONFIG, the installed
// config is used when it exists; otherwise the command says every way to
// give one.
func TestDefaultConfig(t *testing.T) {
	installed := filepath.Join(t.TempDir(), "zdt.yaml")
	for _, exists := range []bool{false, true} {
		if exists {
			if err := os.WriteFile(installed, []byte("cluster: x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cmd := newStatusCommand()
		if err := defaultConfig(cmd, "", installed); err != nil {
			t.Fatal(err)
		}
		got := cmd.Flags().Lookup("config").Value.String()
		if want := map[bool]string{false: "", true: installed}[exists]; got != want {
			t.Errorf("installed config exists %t: --config %q, want %q", exists, got, want)
		}
	}
	t.Setenv(configEnv, "")
	if _, err := runZDT(t, "status"); DefaultConfigPath != "" && fileMissing(DefaultConfigPath) &&
		(err == nil || err.Error() != errNoConfig.Error() || exitCode(err) != 2) {
		t.Errorf("zdt status with no config anywhere: %v (exit %d); want %q, exit 2", err, exitCode(err), errNoConfig)
	}
}

func fileMissing(path string) bool {
	_, err := os.Stat(path)
	return err != nil
}
