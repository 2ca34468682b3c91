package config

// Runbooks configures what runbooks may do (package runbooks).
type Runbooks struct {
	// AllowShell permits runbooks' shell steps, which run a command at the
	// coordinator's controller. Off by default: a runbook file is then
	// refused nothing, but its shell steps fail.
	AllowShell bool
}

type fileRunbooks struct {
	AllowShell bool `yaml:"allow_shell"`
}
