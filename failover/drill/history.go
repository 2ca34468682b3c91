package drill

import (
	"fmt"
	"time"
)

// CheckTakeover checks what a client recorded while a site was lost, and
// says what is wrong. Between from (the fault) and until (the failback),
// no request that began may be answered by the dark site: a fenced site
// never answers. Once another site has answered in that window, only it
// answers there: two sites answering is a split brain, or the service
// flapping. The client's last request must have succeeded: its outage
// ended by itself. Requests without a site (a probe that does not say)
// are not checked for who answered.
func CheckTakeover(h []Request, dark string, from, until time.Time) []string {
	var wrong []string
	taker := ""
	for _, r := range h {
		if r.Err != nil || r.Site == "" || r.Start.Before(from) || (!until.IsZero() && !r.Start.Before(until)) {
			continue
		}
		switch {
		case r.Site == dark:
			wrong = append(wrong, fmt.Sprintf("request %d, sent %s after the fault, was answered by the dark site %s",
				r.Seq, r.Start.Sub(from).Round(time.Millisecond), dark))
		case taker == "":
			taker = r.Site
		case r.Site != taker:
			wrong = append(wrong, fmt.Sprintf("request %d was answered by %s after %s had taken over", r.Seq, r.Site, taker))
		}
	}
	if len(h) == 0 || h[len(h)-1].Err != nil {
		wrong = append(wrong, "the client's last request failed: its outage did not end")
	}
	return wrong
}
