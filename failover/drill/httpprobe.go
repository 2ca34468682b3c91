package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// responderTable is where a service responder writes (package
// e2e/lab/responder's Table): client is the drill, seq the request.
const responderTable = "zdt_responder"

// httpProber asks a service responder to write, and who answered.
type httpProber struct {
	base   string
	drill  string
	client *http.Client
	ledger *pgProber // reads the writes back; nil without opts.VerifyURL
}

func newHTTPProber(ctx context.Context, hostPort, drillID string, timeout time.Duration, opts ProbeOptions) (*httpProber, error) {
	h := &httpProber{
		base:  "http://" + hostPort,
		drill: drillID,
		client: &http.Client{
			Timeout: timeout,
			// A connection per request: each follows the routes of its
			// moment, as a new client would.
			Transport: &http.Transport{DialContext: opts.dial(timeout), DisableKeepAlives: true},
		},
	}
	if opts.VerifyURL == "" {
		return h, nil
	}
	cfg, err := pgx.ParseConfig(opts.VerifyURL)
	if err != nil {
		return nil, errors.New("the database to verify the writes in: its URL cannot be parsed")
	}
	cfg.ConnectTimeout = timeout
	h.ledger = &pgProber{cfg: cfg, drill: drillID, timeout: timeout, table: responderTable, keyColumn: "client"}
	return h, nil
}

func (h *httpProber) Probe(ctx context.Context, seq int) (Answer, error) {
	u := h.base + "/write?client=" + url.QueryEscape(h.drill) + "&seq=" + strconv.Itoa(seq)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return Answer{}, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return Answer{}, err
	}
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("%s: %s", resp.Status, text)
	}
	// "SITE ID": who answered, and the id the database gave the write.
	site, rawID, _ := strings.Cut(text, " ")
	id, err := strconv.ParseInt(rawID, 10, 64)
	if site == "" || err != nil || id <= 0 {
		return Answer{}, fmt.Errorf("an answer that is not SITE ID: %q", text)
	}
	return Answer{Site: site, ID: id}, nil
}

func (h *httpProber) Verify(ctx context.Context, acked []int) (int, error) {
	if h.ledger == nil {
		return 0, nil
	}
	return h.ledger.Verify(ctx, acked)
}

func (h *httpProber) Close() {
	h.client.CloseIdleConnections()
	if h.ledger != nil {
		h.ledger.Close()
	}
}
