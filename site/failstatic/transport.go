package failstatic

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// The paths of the two questions. A view changes nothing; a pledge pauses
// the answering controller's sweeper.
const (
	ViewPath   = "/peer/v1/view"
	PledgePath = "/peer/v1/pledge"
)

// TLS loads the mutual-TLS configurations of a site's controller: as a
// server it requires a client certificate signed by ca, as a client it
// presents its own and trusts only servers signed by ca.
func TLS(ca, cert, key string) (server, client *tls.Config, err error) {
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, nil, fmt.Errorf("fail static: read the CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("fail static: %s holds no PEM certificate", ca)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, nil, fmt.Errorf("fail static: load the site's certificate: %w", err)
	}
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
	}
	return server, client, nil
}

// Handler answers the other sites' questions with answer(pledge). Only
// GET of the view and POST of the pledge are served.
func Handler(answer func(ctx context.Context, pledge bool) View) http.Handler {
	mux := http.NewServeMux()
	serve := func(pledge bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(answer(r.Context(), pledge))
		}
	}
	mux.HandleFunc("GET "+ViewPath, serve(false))
	mux.HandleFunc("POST "+PledgePath, serve(true))
	return mux
}

// Checker asks the other sites' controllers and decides.
type Checker struct {
	Me    string
	Peers map[string]string // site -> host:port of its controller's peer endpoint
	// Client carries the mutual TLS; Timeout bounds one round.
	Client  *http.Client
	Timeout time.Duration
	// Own is this controller's own view, read at once.
	Own func(ctx context.Context, pledge bool) View
}

// NewClient returns an HTTP client for the checks: mutual TLS, and
// connections kept open between checks, so that a check in trouble costs
// one round trip per site, not a handshake.
func NewClient(tlsConfig *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     tlsConfig,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     time.Minute,
	}}
}

// Check runs the two rounds: every site's view, then, only if nothing in
// them rules it out, every site's pledge. The verdict's Sent is when the
// pledges were asked for.
func (c *Checker) Check(ctx context.Context) Verdict {
	sites := append(keys(c.Peers), c.Me)
	answers := c.ask(ctx, false)
	if v := Decide(c.Me, sites, answers, false); !v.AskPledges {
		return v
	}
	sent := time.Now()
	answers = c.ask(ctx, true)
	v := Decide(c.Me, sites, answers, true)
	v.Sent = sent
	if v.Hold {
		v.Why += " (" + Summary(answers) + ")"
	}
	return v
}

const askingWhy = "every site answered and none sees a working etcd majority; asking for pledges"

// ask asks every site at once, each within the timeout, and this
// controller itself.
func (c *Checker) ask(ctx context.Context, pledge bool) map[string]Answer {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var mu sync.Mutex
	answers := make(map[string]Answer, len(c.Peers)+1)
	var wg sync.WaitGroup
	for s, addr := range c.Peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.askOne(ctx, addr, pledge)
			mu.Lock()
			answers[s] = Answer{View: v, Err: err}
			mu.Unlock()
		}()
	}
	own := c.Own(ctx, pledge)
	wg.Wait()
	answers[c.Me] = Answer{View: own}
	return answers
}

// maxAnswer bounds an answer's size: a view is a few hundred bytes.
const maxAnswer = 64 << 10

func (c *Checker) askOne(ctx context.Context, addr string, pledge bool) (View, error) {
	method, path := http.MethodGet, ViewPath
	if pledge {
		method, path = http.MethodPost, PledgePath
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, bytes.NewReader(nil))
	if err != nil {
		return View{}, err
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		return View{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return View{}, fmt.Errorf("%s answered %s", addr, resp.Status)
	}
	var v View
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&v); err != nil {
		return View{}, fmt.Errorf("%s: decode the answer: %w", addr, err)
	}
	if v.Site == "" {
		return View{}, errors.New(addr + " answered without a site")
	}
	return v, nil
}
