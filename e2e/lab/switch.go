package lab

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/e2e/softswitch"
)

// The fabric between a lab's sites in network namespaces is a switch in
// userspace (softswitch), `zdt lab switch`, a process of the lab in the
// fabric's namespace: nothing crosses between the sites, or to them from
// the machine and the observer, while it does not run. The links between
// two sites can be delayed or cut (SetLink, `zdt lab link`); the switch
// keeps them in DIR/fabric/links.json, so that they hold when it
// restarts. It takes requests on a unix socket (SwitchSocket).
const (
	switchDirName  = "fabric"
	linksFileName  = "links.json"
	switchLogName  = "switch.log"
	switchStartMax = 10 * time.Second
)

// SiteLink is the link between two sites of a lab in network namespaces.
type SiteLink struct {
	A, B string
	softswitch.Link
}

func (l SiteLink) String() string { return l.A + "-" + l.B + ": " + l.Link.String() }

// siteLinkJSON is a SiteLink in links.json and on the switch's socket.
type siteLinkJSON struct {
	A      string `json:"a"`
	B      string `json:"b"`
	Delay  string `json:"delay,omitempty"`
	Jitter string `json:"jitter,omitempty"`
	Cut    bool   `json:"cut,omitempty"`
	// BlockTCPPort drops TCP from and to one port (softswitch.Link).
	BlockTCPPort uint16 `json:"block_tcp_port,omitempty"`
}

func (l SiteLink) MarshalJSON() ([]byte, error) {
	j := siteLinkJSON{A: l.A, B: l.B, Cut: l.Cut, BlockTCPPort: l.BlockTCPPort}
	if l.Delay != 0 {
		j.Delay = l.Delay.String()
	}
	if l.Jitter != 0 {
		j.Jitter = l.Jitter.String()
	}
	return json.Marshal(j)
}

func (l *SiteLink) UnmarshalJSON(data []byte) error {
	var j siteLinkJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*l = SiteLink{A: j.A, B: j.B, Link: softswitch.Link{Cut: j.Cut, BlockTCPPort: j.BlockTCPPort}}
	for _, d := range []struct {
		name, s string
		to      *time.Duration
	}{{"delay", j.Delay, &l.Delay}, {"jitter", j.Jitter, &l.Jitter}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("link %s-%s: %s: %w", j.A, j.B, d.name, err)
		}
		*d.to = v
	}
	return nil
}

var switchProc = proc{role: switchRole}

func (l *Lab) switchDir() string { return filepath.Join(l.dir, switchDirName) }

// SwitchSocket is the switch's unix socket: a short path, as a unix
// socket's must be.
func (l *Lab) SwitchSocket() string { return filepath.Join(os.TempDir(), l.fab.ID+"-switch.sock") }

// isSwitch reports whether pid is the switch of the lab in dir.
func isSwitch(pid int, dir string) bool {
	args := cmdline(pid)
	return len(args) > 2 && slices.Contains(args, "switch") && flagValue(args[1:], "--lab") == dir
}

// startSwitch starts the fabric's switch unless it runs, and waits until
// it takes requests (by then it forwards).
func (l *Lab) startSwitch() error {
	if _, ok := l.running(switchProc); !ok {
		if err := os.MkdirAll(l.switchDir(), 0o755); err != nil {
			return fmt.Errorf("start %s: %w", switchProc, err)
		}
		_ = os.Remove(l.SwitchSocket()) // what a killed switch left
		if err := l.start(switchProc, l.binary, []string{"lab", "switch", "--lab", l.dir}, l.env); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), switchStartMax)
	defer cancel()
	if err := waitUnixSocket(ctx, l.SwitchSocket()); err != nil {
		return fmt.Errorf("%s: %w; see %s", switchProc, err, l.logPath(switchProc))
	}
	return nil
}

// checkSiteLink reports what is wrong with a link between two sites of
// the lab.
func (l *Lab) checkSiteLink(sl SiteLink) error {
	if l.fab == nil {
		return errors.New("this lab runs on loopback addresses: only a lab in network namespaces (zdt lab --netns) has links between its sites")
	}
	for _, s := range []string{sl.A, sl.B} {
		if _, err := l.Site(s); err != nil {
			return fmt.Errorf("link %s-%s: %w", sl.A, sl.B, err)
		}
	}
	if sl.A == sl.B {
		return fmt.Errorf("link %s-%s: a link joins two different sites", sl.A, sl.B)
	}
	return sl.Validate()
}

// delayedLinks are the links between every two sites, each delayed d.
func (l *Lab) delayedLinks(d SiteDelay) []SiteLink {
	var links []SiteLink
	names := l.SiteNames()
	for i, a := range names {
		for _, b := range names[i+1:] {
			links = append(links, SiteLink{A: a, B: b, Link: softswitch.Link{Delay: d.Delay, Jitter: d.Jitter}})
		}
	}
	return links
}

// SetSiteDelays records a delay on every link between two sites, for the
// switch to apply when it starts: call it before StartAll.
func (l *Lab) SetSiteDelays(d SiteDelay) error {
	links := l.delayedLinks(d)
	for _, sl := range links {
		if err := l.checkSiteLink(sl); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(l.switchDir(), 0o755); err != nil {
		return err
	}
	return writeLinks(l.switchDir(), links)
}

// DelaySiteLinks delays every link between two sites at once, through the
// running switch.
func (l *Lab) DelaySiteLinks(ctx context.Context, d SiteDelay) error {
	for _, sl := range l.delayedLinks(d) {
		if err := l.SetLink(ctx, sl); err != nil {
			return err
		}
	}
	return nil
}

// SetLink sets the link between two sites, at once, through the running
// switch.
func (l *Lab) SetLink(ctx context.Context, sl SiteLink) error {
	if err := l.checkSiteLink(sl); err != nil {
		return err
	}
	body, err := json.Marshal(sl)
	if err != nil {
		return err
	}
	_, err = l.switchRequest(ctx, http.MethodPut, body)
	return err
}

// LoseEtcdMember cuts the site's etcd member off from the other members
// while everything else of the site stays: its links to the other sites
// drop TCP to and from the members' peer port (each keeps its delay). The
// site's controller lives on, its member without a leader. SetLink with
// an empty softswitch.Link heals a link.
func (l *Lab) LoseEtcdMember(ctx context.Context, site string) error {
	var port uint16
	for _, s := range l.sites {
		if s.Name != site {
			continue
		}
		ap, err := peerAddr(s)
		if err != nil {
			return err
		}
		port = ap.Port()
	}
	if port == 0 {
		return fmt.Errorf("no site %q in this lab", site)
	}
	links, err := l.Links(ctx)
	if err != nil {
		return err
	}
	for _, other := range l.SiteNames() {
		if other == site {
			continue
		}
		sl := SiteLink{A: site, B: other}
		for _, have := range links {
			if (have.A == site && have.B == other) || (have.A == other && have.B == site) {
				sl.Link = have.Link
			}
		}
		sl.BlockTCPPort = port
		if err := l.SetLink(ctx, sl); err != nil {
			return err
		}
	}
	return nil
}

// Links are the links between the lab's sites that are not direct, as
// the running switch has them.
func (l *Lab) Links(ctx context.Context) ([]SiteLink, error) {
	if l.fab == nil {
		return nil, nil
	}
	data, err := l.switchRequest(ctx, http.MethodGet, nil)
	if err != nil {
		return nil, err
	}
	var links []SiteLink
	if err := json.Unmarshal(data, &links); err != nil {
		return nil, fmt.Errorf("the switch's links: %w", err)
	}
	return links, nil
}

func (l *Lab) switchRequest(ctx context.Context, method string, body []byte) ([]byte, error) {
	sock := l.SwitchSocket()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, method, "http://switch/links", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the lab's switch (is the lab running? `zdt lab --dir %s`): %w", l.dir, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("the lab's switch: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the lab's switch: %s", bytes.TrimSpace(data))
	}
	return data, nil
}

func readLinks(dir string) ([]SiteLink, error) {
	data, err := os.ReadFile(filepath.Join(dir, linksFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var links []SiteLink
	if err := json.Unmarshal(data, &links); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, linksFileName), err)
	}
	return links, nil
}

func writeLinks(dir string, links []SiteLink) error {
	data, err := json.MarshalIndent(links, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, linksFileName), append(data, '\n'), 0o644)
}

// RunSwitch is `zdt lab switch`: it runs the fabric's switch of the lab in
// dir, with the links DIR/fabric/links.json sets, and takes requests on
// SwitchSocket, until ctx ends. It must run in the fabric's namespace.
func RunSwitch(ctx context.Context, dir string, log *zap.Logger) error {
	l, err := Open(dir, Options{})
	if err != nil {
		return err
	}
	if l.fab == nil {
		return fmt.Errorf("the lab in %s runs on loopback addresses: it has no switch", dir)
	}
	links, err := readLinks(l.switchDir())
	if err != nil {
		return err
	}
	for _, sl := range links {
		if err := l.checkSiteLink(sl); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(l.switchDir(), linksFileName), err)
		}
	}
	sw, err := softswitch.New(l.fab.SwitchPorts())
	if err != nil {
		return err
	}
	defer sw.Close()
	for _, sl := range links {
		if err := sw.SetLink(sl.A, sl.B, sl.Link); err != nil {
			return err
		}
		log.Info("link", zap.Stringer("link", sl))
	}
	ln, err := net.Listen("unix", l.SwitchSocket())
	if err != nil {
		return err
	}
	s := &switchServer{l: l, sw: sw, log: log}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("switch running", zap.Strings("ports", sw.Ports()), zap.String("socket", l.SwitchSocket()))
	err = srv.Serve(ln)
	st := sw.Stats()
	log.Info("switch stopped", zap.Int64("frames", st.Frames), zap.Int64("sent", st.Sent),
		zap.Int64("cut_drops", st.CutDrops), zap.Int64("queue_drops", st.QueueDrops),
		zap.Int64("send_errors", st.SendErrors), zap.Int64("read_errors", st.ReadErrors))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// switchServer answers GET /links with the links that are not direct and
// PUT /links with one link to set.
type switchServer struct {
	l   *Lab
	sw  *softswitch.Switch
	log *zap.Logger
}

func (s *switchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/links" {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, s.links())
	case http.MethodPut:
		var sl SiteLink
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&sl); err != nil {
			http.Error(w, "a link: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.l.checkSiteLink(sl); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.sw.SetLink(sl.A, sl.B, sl.Link); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.log.Info("link", zap.Stringer("link", sl))
		if err := writeLinks(s.l.switchDir(), s.links()); err != nil {
			http.Error(w, "the link is set, but not kept for a restart: "+err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, s.links())
	default:
		w.Header().Set("Allow", "GET, PUT")
		http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
	}
}

func (s *switchServer) links() []SiteLink {
	links := []SiteLink{}
	for pair, link := range s.sw.Links() {
		links = append(links, SiteLink{A: pair[0], B: pair[1], Link: link})
	}
	slices.SortFunc(links, func(a, b SiteLink) int {
		return cmp.Or(cmp.Compare(a.A, b.A), cmp.Compare(a.B, b.B))
	})
	return links
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
