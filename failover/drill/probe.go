package drill

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ProbeResult is what the drill's client saw: every request it sent, the
// outages (failed requests in a row), and for a probe that writes, whether
// every write it got acknowledged is there afterwards.
type ProbeResult struct {
	// Target is the probe's URL, without a password.
	Target         string    `json:"target"`
	IntervalMillis int64     `json:"interval_ms"`
	Started        time.Time `json:"started"`
	Ended          time.Time `json:"ended"`
	Sent           int       `json:"sent"`
	Failed         int       `json:"failed"`
	Outages        []Outage  `json:"outages"`
	// Writes: the probe writes (postgres); Acknowledged writes were
	// committed as far as the client knows, Missing of them were not
	// found afterwards: data lost.
	Writes       bool `json:"writes"`
	Acknowledged int  `json:"acknowledged"`
	Missing      int  `json:"missing"`
	// AnsweredBy are the runs of answers from one site, in order, for a
	// probe whose service says who answered (http).
	AnsweredBy []SiteRun `json:"answered_by,omitempty"`
}

// SiteRun is a run of requests in a row that one site answered.
type SiteRun struct {
	Site    string    `json:"site"`
	First   time.Time `json:"first"` // the start of the first request
	Last    time.Time `json:"last"`  // the end of the last
	Answers int       `json:"answers"`
}

// Request is one request of a probe, as its history keeps it.
type Request struct {
	Seq        int
	Start, End time.Time
	Answer
	Err error // nil: it succeeded (a write was acknowledged)
}

// Answer is what the service said of a request that succeeded, when it
// says: who answered, and the id its database gave the write.
type Answer struct {
	Site string // "" when the service does not say
	ID   int64  // 0 when it does not say
}

// Outage is a run of failed requests: from the start of the first to the
// end of the next request that succeeded (or the probe's end).
type Outage struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Failures  int       `json:"failures"`
	LastError string    `json:"last_error"`
}

// Interval is the time between two requests.
func (p *ProbeResult) Interval() time.Duration {
	return time.Duration(p.IntervalMillis) * time.Millisecond
}

// LongestOutage is the longest outage the client saw, 0 if none.
func (p *ProbeResult) LongestOutage() time.Duration {
	var longest time.Duration
	for _, o := range p.Outages {
		longest = max(longest, o.End.Sub(o.Start))
	}
	return longest
}

// Prober sends one request to the service.
type Prober interface {
	// Probe sends one request and says whether it succeeded, and what
	// the service answered (who, the write's id) when it says.
	Probe(ctx context.Context, seq int) (Answer, error)
	// Verify says, after the drill, how many of the acknowledged writes
	// (by sequence number) are missing; a probe that does not write
	// returns 0.
	Verify(ctx context.Context, acknowledged []int) (missing int, err error)
	Close()
}

// Probe is a running probe: Run sends a request every interval until its
// context ends, and Result says what it saw.
type Probe struct {
	target   string
	p        Prober
	interval time.Duration
	writes   bool

	mu      sync.Mutex
	res     ProbeResult
	acked   []int
	outage  *Outage
	history []Request
	// noted is closed, and replaced, after each request.
	noted chan struct{}
}

// NewProbe returns the probe of a URL:
//   - tcp://HOST:PORT connects (a request succeeds when the connection
//     is accepted within the timeout);
//   - postgres://... (or postgresql://) writes one row per request into
//     the table zdt_drill_probe (created if need be), over one connection
//     opened again after each failure: give every member's host with
//     target_session_attrs=read-write, as the service's clients do. Its
//     rows are checked afterwards and removed.
//
// timeout bounds one request.
func NewProbe(ctx context.Context, rawURL, drillID string, interval, timeout time.Duration) (*Probe, error) {
	return NewProbeWith(ctx, rawURL, drillID, interval, timeout, ProbeOptions{})
}

// ProbeOptions tune a probe beyond its URL.
type ProbeOptions struct {
	// Dial opens the connections of tcp and http probes (as
	// net.Dialer.DialContext, which nil means): from another network
	// namespace, say.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// VerifyURL is the database (postgres://...) where an http probe's
	// acknowledged writes are checked afterwards; "" checks nothing.
	VerifyURL string
}

// NewProbeWith is NewProbe with options, and one more kind of URL:
//   - http://HOST:PORT is a service responder (zdt lab's): each request
//     is a POST /write?client=DRILL&seq=N, which the responder writes
//     into its database (table zdt_responder) before it answers with
//     its site's name; a request succeeds on 200. Every request opens a
//     connection of its own, so each follows the routes of its moment.
//     With opts.VerifyURL the acknowledged writes are checked afterwards
//     in that database, and removed.
func NewProbeWith(ctx context.Context, rawURL, drillID string, interval, timeout time.Duration, opts ProbeOptions) (*Probe, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("--probe: not a URL: %w", err)
	}
	pr := &Probe{target: u.Redacted(), interval: interval, noted: make(chan struct{})}
	switch u.Scheme {
	case "tcp":
		if _, _, err := net.SplitHostPort(u.Host); err != nil || u.Path != "" {
			return nil, fmt.Errorf("--probe %s: want tcp://HOST:PORT", pr.target)
		}
		pr.p = &tcpProber{addr: u.Host, timeout: timeout, dial: opts.dial(timeout)}
	case "http":
		if _, _, err := net.SplitHostPort(u.Host); err != nil || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("--probe %s: want http://HOST:PORT, a service responder", pr.target)
		}
		hp, err := newHTTPProber(ctx, u.Host, drillID, timeout, opts)
		if err != nil {
			return nil, fmt.Errorf("--probe %s: %w", pr.target, err)
		}
		pr.p, pr.writes = hp, opts.VerifyURL != ""
	case "postgres", "postgresql":
		cfg, err := pgx.ParseConfig(rawURL)
		if err != nil {
			return nil, fmt.Errorf("--probe %s: %w", pr.target, err)
		}
		cfg.ConnectTimeout = timeout
		pp := &pgProber{cfg: cfg, drill: drillID, timeout: timeout, table: probeTable, keyColumn: "drill"}
		if err := pp.setUp(ctx); err != nil {
			return nil, fmt.Errorf("--probe %s: %w", pr.target, err)
		}
		pr.p, pr.writes = pp, true
	default:
		return nil, fmt.Errorf("--probe %s: want tcp://HOST:PORT, http://HOST:PORT or postgres://...", pr.target)
	}
	return pr, nil
}

// Run probes every interval until ctx ends; then Result has it all.
func (pr *Probe) Run(ctx context.Context) {
	pr.mu.Lock()
	pr.res = ProbeResult{Target: pr.target, IntervalMillis: pr.interval.Milliseconds(), Started: time.Now(), Writes: pr.writes}
	pr.mu.Unlock()
	tick := time.NewTicker(pr.interval)
	defer tick.Stop()
loop:
	for seq := 1; ; seq++ {
		start := time.Now()
		answer, err := pr.p.Probe(ctx, seq)
		if ctx.Err() != nil {
			break // a request cut by the end counts for nothing
		}
		pr.note(Request{Seq: seq, Start: start, End: time.Now(), Answer: answer, Err: err})
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.res.Ended = time.Now()
	if pr.outage != nil {
		pr.outage.End = pr.res.Ended
		pr.res.Outages = append(pr.res.Outages, *pr.outage)
		pr.outage = nil
	}
}

// note records one request.
func (pr *Probe) note(r Request) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	close(pr.noted)
	pr.noted = make(chan struct{})
	pr.history = append(pr.history, r)
	pr.res.Sent++
	if r.Err == nil {
		pr.acked = append(pr.acked, r.Seq)
		if pr.outage != nil {
			pr.outage.End = r.End
			pr.res.Outages = append(pr.res.Outages, *pr.outage)
			pr.outage = nil
		}
		if r.Site != "" {
			runs := pr.res.AnsweredBy
			if n := len(runs); n > 0 && runs[n-1].Site == r.Site {
				runs[n-1].Last = r.End
				runs[n-1].Answers++
			} else {
				pr.res.AnsweredBy = append(runs, SiteRun{Site: r.Site, First: r.Start, Last: r.End, Answers: 1})
			}
		}
		return
	}
	pr.res.Failed++
	if pr.outage == nil {
		pr.outage = &Outage{Start: r.Start}
	}
	pr.outage.Failures++
	pr.outage.LastError = r.Err.Error()
}

// History is every request so far, in order.
func (pr *Probe) History() []Request {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return slices.Clone(pr.history)
}

// Result is what the probe saw, with its writes verified (for a probe
// that writes); call it after Run returned.
func (pr *Probe) Result(ctx context.Context) (*ProbeResult, error) {
	pr.mu.Lock()
	res, acked := pr.res, slices.Clone(pr.acked)
	pr.mu.Unlock()
	if pr.writes {
		res.Acknowledged = len(acked)
		missing, err := pr.p.Verify(ctx, acked)
		if err != nil {
			return &res, fmt.Errorf("verify the probe's writes: %w", err)
		}
		res.Missing = missing
	}
	return &res, nil
}

// Close releases the probe's connection.
func (pr *Probe) Close() { pr.p.Close() }

// tcpProber connects.
type tcpProber struct {
	addr    string
	timeout time.Duration
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (t *tcpProber) Probe(ctx context.Context, _ int) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	c, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return Answer{}, err
	}
	return Answer{}, c.Close()
}

// dial is opts.Dial, or a plain dialer's.
func (opts ProbeOptions) dial(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if opts.Dial != nil {
		return opts.Dial
	}
	d := &net.Dialer{Timeout: timeout}
	return d.DialContext
}

func (t *tcpProber) Verify(context.Context, []int) (int, error) { return 0, nil }
func (t *tcpProber) Close()                                     {}

// pgProber writes a row per request. Its Verify reads the rows back,
// from table (probeTable by default), whose column keyColumn ("drill" by
// default) holds the drill and seq the sequence number.
type pgProber struct {
	cfg       *pgx.ConnConfig
	drill     string
	timeout   time.Duration
	conn      *pgx.Conn
	table     string
	keyColumn string
}

const probeTable = "zdt_drill_probe"

func (p *pgProber) setUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*p.timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		return err
	}
	p.conn = conn
	_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+probeTable+` (drill text NOT NULL, seq integer NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (drill, seq))`)
	return err
}

func (p *pgProber) Probe(ctx context.Context, seq int) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if p.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			return Answer{}, err
		}
		p.conn = conn
	}
	_, err := p.conn.Exec(ctx, `INSERT INTO `+probeTable+` (drill, seq) VALUES ($1, $2)`, p.drill, seq)
	if err != nil {
		p.drop()
	}
	return Answer{}, err
}

// drop closes the connection after a failure: the next request connects
// again, to whichever member takes writes now.
func (p *pgProber) drop() {
	if p.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		defer cancel()
		_ = p.conn.Close(ctx)
		p.conn = nil
	}
}

func (p *pgProber) Verify(ctx context.Context, acked []int) (int, error) {
	var lastErr error
	for range 20 { // the service may still be settling: a few tries
		vctx, cancel := context.WithTimeout(ctx, 5*p.timeout)
		missing, err := p.verify(vctx, acked)
		cancel()
		if err == nil {
			return missing, nil
		}
		lastErr = err
		p.drop()
		select {
		case <-ctx.Done():
			return 0, errors.Join(lastErr, ctx.Err())
		case <-time.After(p.timeout):
		}
	}
	return 0, lastErr
}

func (p *pgProber) verify(ctx context.Context, acked []int) (int, error) {
	if p.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			return 0, err
		}
		p.conn = conn
	}
	rows, err := p.conn.Query(ctx, `SELECT seq FROM `+p.table+` WHERE `+p.keyColumn+` = $1`, p.drill)
	if err != nil {
		return 0, err
	}
	present := map[int]bool{}
	for rows.Next() {
		var seq int
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return 0, err
		}
		present[seq] = true
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	missing := 0
	for _, seq := range acked {
		if !present[seq] {
			missing++
		}
	}
	if _, err := p.conn.Exec(ctx, `DELETE FROM `+p.table+` WHERE `+p.keyColumn+` = $1`, p.drill); err != nil {
		return missing, fmt.Errorf("remove the probe's rows of drill %s: %w", p.drill, err)
	}
	return missing, nil
}

func (p *pgProber) Close() { p.drop() }
