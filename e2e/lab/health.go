package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zdt-project/zdt/site/apiauth"
)

const (
	// healthInterval paces the /healthz polls.
	healthInterval = 100 * time.Millisecond
	// healthTimeout bounds one /healthz request.
	healthTimeout = time.Second
	// logTailLines is how much of a controller's log an error shows.
	logTailLines = 15
)

// Health is what a controller's /healthz says: 200 once it holds its lease
// (state "up"), 503 otherwise (joining, self-fenced, fenced).
type Health struct {
	Site        string `json:"site"`
	State       string `json:"state"`
	Coordinator string `json:"coordinator"`
}

// answer is the last thing a site said on /healthz.
type answer struct {
	status int    // 0 if there was no HTTP answer
	body   string // trimmed
	health Health
	err    error
}

func (a answer) String() string {
	switch {
	case a.err != nil:
		return a.err.Error()
	case a.status == 0:
		return "nothing yet"
	default:
		return fmt.Sprintf("HTTP %d %s", a.status, a.body)
	}
}

// WaitHealthy waits until every running site's /healthz answers 200, at
// least one of them names a coordinator, and the libvirtd of every running
// site with hypervisors answers. It fails at once if a site's controller
// or libvirtd dies, and when ctx ends; either error names the site, what it
// last said and the end of its log.
func (l *Lab) WaitHealthy(ctx context.Context) error {
	client, closeClient := l.newHealthClient()
	defer closeClient()
	ticker := time.NewTicker(healthInterval)
	defer ticker.Stop()
	last := make(map[string]answer)
	hv := make(libvirtdAnswers)
	for {
		if pid, ok := l.ObserverRunning(); l.observer && !ok && pid != 0 {
			return l.diedError(observerProc, pid) // it was started and died
		}
		var running []string
		for _, s := range l.sites {
			pid, ok := l.Running(s.Name)
			if !ok {
				if pid != 0 { // it has a pid file: it was started and died
					return l.diedError(controllerOf(s.Name), pid)
				}
				continue
			}
			running = append(running, s.Name)
			if a := probe(ctx, client, s.API); ctx.Err() == nil {
				last[s.Name] = a // an answer cut short by ctx says nothing
			}
			if err := l.askLibvirtd(ctx, s.Name, hv); err != nil {
				return err
			}
		}
		if ctx.Err() == nil && len(running) == 0 {
			return fmt.Errorf("no site of the lab in %s runs: start them with `zdt lab --dir %s`", l.dir, l.dir)
		}
		unhealthy, coordinator := judge(running, last)
		silent := l.silentLibvirtds(running, hv)
		if ctx.Err() == nil && len(unhealthy) == 0 && coordinator != "" && len(silent) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if len(unhealthy) == 0 && coordinator != "" {
				return l.libvirtdSilentError(ctx.Err(), silent, hv)
			}
			return l.notHealthyError(ctx.Err(), unhealthy, last)
		case <-ticker.C:
		}
	}
}

// libvirtdAnswers holds, for each site with hypervisors, what its libvirtd
// last said: nil once it answered, the error of the last try otherwise.
type libvirtdAnswers map[string]error

// silentLibvirtds lists the running sites with hypervisors whose libvirtd
// has not answered yet.
func (l *Lab) silentLibvirtds(running []string, hv libvirtdAnswers) []string {
	var out []string
	for _, name := range running {
		if err, asked := hv[name]; l.hasLibvirtd(name) && (!asked || err != nil) {
			out = append(out, name)
		}
	}
	return out
}

// askLibvirtd asks the site's libvirtd, unless it has answered before, and
// notes what it said in hv. It fails if the libvirtd was started and died.
func (l *Lab) askLibvirtd(ctx context.Context, site string, hv libvirtdAnswers) error {
	if !l.hasLibvirtd(site) {
		return nil
	}
	if err, asked := hv[site]; asked && err == nil {
		return nil
	}
	pid, ok := l.LibvirtdRunning(site)
	switch {
	case !ok && pid != 0:
		return l.diedError(libvirtdOf(site), pid)
	case !ok:
		hv[site] = fmt.Errorf("%w: take the site down and up again to start it (`zdt lab site %s down --dir %s`, then up)",
			ErrNotRunning, site, l.dir)
		return nil
	}
	if err := handshake(ctx, l.libvirtdSocket(site)); ctx.Err() == nil || err == nil {
		hv[site] = err
	}
	return nil
}

func (l *Lab) libvirtdSilentError(cause error, silent []string, hv libvirtdAnswers) error {
	var b strings.Builder
	for _, name := range silent {
		p := libvirtdOf(name)
		said := "not asked yet"
		if err := hv[name]; err != nil {
			said = err.Error()
		}
		fmt.Fprintf(&b, "\n%s does not answer on %s: %s; see %s%s",
			p, l.libvirtdSocket(name), said, l.logPath(p), l.logTail(p))
	}
	return fmt.Errorf("the lab is not healthy (%w): the controllers are up, but not every site's hypervisor:%s", cause, b.String())
}

// judge lists the running sites whose last answer was not 200, and a
// coordinator one of them names.
func judge(running []string, last map[string]answer) (unhealthy []string, coordinator string) {
	for _, name := range running {
		a := last[name]
		if a.status != http.StatusOK {
			unhealthy = append(unhealthy, name)
		} else if a.health.Coordinator != "" {
			coordinator = a.health.Coordinator
		}
	}
	return unhealthy, coordinator
}

// WaitAnswering waits until the site's controller answers /healthz with
// any status (its API is listening) and its libvirtd, if it has one,
// answers too. It fails at once if either dies, and when ctx ends.
func (l *Lab) WaitAnswering(ctx context.Context, site string) error {
	s, err := l.Site(site)
	if err != nil {
		return err
	}
	client, closeClient := l.newHealthClient()
	defer closeClient()
	ticker := time.NewTicker(healthInterval)
	defer ticker.Stop()
	hv := make(libvirtdAnswers)
	for {
		pid, ok := l.Running(site)
		if !ok {
			if pid != 0 {
				return l.diedError(controllerOf(site), pid)
			}
			return fmt.Errorf("site %s is %w: start it with `zdt lab site %s up --dir %s`", site, ErrNotRunning, site, l.dir)
		}
		if err := l.askLibvirtd(ctx, site, hv); err != nil {
			return err
		}
		a := probe(ctx, client, s.API)
		if a.err == nil && len(l.silentLibvirtds([]string{site}, hv)) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if a.err == nil {
				return l.libvirtdSilentError(ctx.Err(), []string{site}, hv)
			}
			return fmt.Errorf("site %s does not answer on https://%s/healthz (%w): %v%s",
				site, s.API, ctx.Err(), a, l.logTail(controllerOf(site)))
		case <-ticker.C:
		}
	}
}

// newHealthClient is an HTTPS client of the sites' APIs that trusts the
// lab's CA. /healthz needs no identity.
func (l *Lab) newHealthClient() (*http.Client, func()) {
	transport := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	// A lab without its CA fails every probe, saying why.
	transport.TLSClientConfig, _ = apiauth.ClientTLS(filepath.Join(l.dir, certPath(caName)), "", "")
	return &http.Client{Transport: transport, Timeout: healthTimeout}, transport.CloseIdleConnections
}

// Health asks a site's controller for its /healthz, within a second.
func (l *Lab) Health(ctx context.Context, siteName string) (Health, error) {
	s, err := l.Site(siteName)
	if err != nil {
		return Health{}, err
	}
	client, closeClient := l.newHealthClient()
	defer closeClient()
	a := probe(ctx, client, s.API)
	switch {
	case a.err != nil:
		return Health{}, a.err
	case a.health.Site == "":
		return Health{}, fmt.Errorf("site %s's /healthz: %s", siteName, a)
	}
	return a.health, nil
}

// probe asks one site's /healthz.
func probe(ctx context.Context, client *http.Client, api string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+api+"/healthz", nil)
	if err != nil {
		return answer{err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return answer{err: fmt.Errorf("read the answer of https://%s/healthz: %w", api, err)}
	}
	a := answer{status: resp.StatusCode, body: strings.TrimSpace(string(body))}
	_ = json.Unmarshal(body, &a.health) // a body that is not ours shows as text
	return a
}

func (l *Lab) diedError(p proc, pid int) error {
	if p.site == "" {
		return fmt.Errorf("%s (pid %d) %s; see %s%s", p, pid, l.exitStatus(p, pid), l.logPath(p), l.logTail(p))
	}
	what := "controller"
	if p.role == libvirtdRole {
		what = "libvirtd"
	}
	return fmt.Errorf("site %s: its %s (pid %d) %s; see %s%s",
		p.site, what, pid, l.exitStatus(p, pid), l.logPath(p), l.logTail(p))
}

func (l *Lab) notHealthyError(cause error, unhealthy []string, last map[string]answer) error {
	if len(unhealthy) == 0 {
		var said []string
		for _, s := range l.sites {
			if a, ok := last[s.Name]; ok {
				said = append(said, fmt.Sprintf("site %s: %v", s.Name, a))
			}
		}
		return fmt.Errorf("the lab is not healthy (%w): every site is up but none names a coordinator (%s); see the controller.log files in %s",
			cause, strings.Join(said, "; "), l.dir)
	}
	var b strings.Builder
	for _, name := range unhealthy {
		fmt.Fprintf(&b, "\nsite %s last said: %v%s", name, last[name], l.logTail(controllerOf(name)))
	}
	which := "site " + unhealthy[0] + " is"
	if len(unhealthy) > 1 {
		which = "sites " + strings.Join(unhealthy, ", ") + " are"
	}
	return fmt.Errorf("the lab is not healthy (%w): %s not up:%s", cause, which, b.String())
}

// logTail is the end of a process's log, indented for an error message,
// or "" if there is nothing to show.
func (l *Lab) logTail(p proc) string {
	path := l.logPath(p)
	lines := tailLines(path, logTailLines)
	if len(lines) == 0 {
		return ""
	}
	rel, err := filepath.Rel(l.dir, path)
	if err != nil {
		rel = path
	}
	return fmt.Sprintf("\n  the end of %s:\n    %s", rel, strings.Join(lines, "\n    "))
}

// tailLines returns the last n lines of a file (nil if it cannot be read).
func tailLines(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const window = 64 << 10
	if info, err := f.Stat(); err == nil && info.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return nil
		}
	}
	data, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
