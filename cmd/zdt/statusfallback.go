package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/zdt-project/zdt/cmd/zdt/internal/controller"
	"github.com/zdt-project/zdt/site/apiauth"
	"github.com/zdt-project/zdt/site/config"
)

// siteHealth is one site's controller's own word (/healthz), for when
// etcd does not answer.
type siteHealth struct {
	Site   string             `json:"site"`
	Health *controller.Health `json:"health,omitempty"`
	Error  string             `json:"error,omitempty"`
}

// controllersStatus is what zdt status shows when etcd does not answer:
// why, and what each site's controller says of itself, fail static above
// all.
type controllersStatus struct {
	Etcd  string       `json:"etcd_error"`
	Sites []siteHealth `json:"sites"`
}

// readControllers asks every site's controller for its /healthz at once.
func readControllers(ctx context.Context, cfg *config.Cluster, etcdErr error) controllersStatus {
	st := controllersStatus{Etcd: etcdErr.Error(), Sites: make([]siteHealth, len(cfg.Sites))}
	client := &http.Client{Timeout: 2 * time.Second}
	if tlsCfg, err := apiauth.ClusterTLS(cfg); err == nil && tlsCfg != nil {
		client.Transport = &http.Transport{TLSClientConfig: tlsCfg}
	} // an unreadable CA shows as each site's error
	var wg sync.WaitGroup
	for i, s := range cfg.Sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.Sites[i] = readHealth(ctx, client, s)
		}()
	}
	wg.Wait()
	return st
}

func readHealth(ctx context.Context, client *http.Client, s config.Site) siteHealth {
	h := siteHealth{Site: s.Name}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiauth.BaseURL(s)+"/healthz", nil)
	if err != nil {
		h.Error = err.Error()
		return h
	}
	resp, err := client.Do(req)
	if err != nil {
		h.Error = err.Error()
		return h
	}
	defer resp.Body.Close()
	var health controller.Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&health); err != nil {
		h.Error = fmt.Sprintf("%s: %v", resp.Status, err)
		return h
	}
	h.Health = &health
	return h
}

// failingStatic lists the sites whose controllers fail static.
func (c controllersStatus) failingStatic() []string {
	var sites []string
	for _, s := range c.Sites {
		if s.Health != nil && s.Health.FailStatic != "" {
			sites = append(sites, s.Site)
		}
	}
	return sites
}

// writeControllersTable writes it for people.
func writeControllersTable(w io.Writer, c controllersStatus) error {
	fmt.Fprintf(w, "etcd does not answer: %s\n", c.Etcd)
	if sites := c.failingStatic(); len(sites) > 0 {
		fmt.Fprintf(w, "\nFAIL STATIC at %s: etcd has failed for every site; they serve on in their current roles and decide nothing until it returns.\n",
			strings.Join(sites, ", "))
	}
	fmt.Fprintln(w, "\nWhat each site's controller says (its /healthz):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tCONTROLLER\tLEASE\tFAIL STATIC\tNOTE")
	for _, s := range c.Sites {
		if s.Health == nil {
			fmt.Fprintf(tw, "%s\t(no answer)\t-\t-\t%s\n", s.Site, s.Error)
			continue
		}
		h := s.Health
		static, note := "-", h.Reason
		if h.FailStatic != "" && h.FailStaticSince != nil {
			static = "since " + h.FailStaticSince.Local().Format(time.TimeOnly) + " (" + time.Since(*h.FailStaticSince).Round(time.Second).String() + ")"
			note = strings.TrimPrefix(h.FailStatic, "FAIL STATIC: ")
		}
		lease := (time.Duration(h.LeaseRemainingMS) * time.Millisecond).String()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Site, h.State, lease, static, note)
	}
	return tw.Flush()
}
