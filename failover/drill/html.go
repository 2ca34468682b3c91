package drill

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var reportTemplate string

// The timeline's geometry, in SVG user units.
const (
	chartLeft  = 220.0 // room for the rows' labels
	chartWidth = 720.0 // the time axis
	rowHeight  = 56.0  // a row's line, and two lines of labels
	chartTop   = 30.0  // room for the axis
)

// timeline is the chart of the HTML report: a row per service per op,
// with the op's span and its milestones, and a row for what the client
// saw.
type timeline struct {
	Width, Height float64
	Ticks         []tick
	Rows          []row
	// Events are moments across every row: the fault, the restore.
	Events []tick
}

type tick struct {
	X     float64
	Label string
}

type row struct {
	Label string
	Y     float64
	// Span is the op's time, or the probe's.
	SpanX1, SpanX2 float64
	Marks          []mark
	Outages        []bar
	// Client: the row of the probe.
	Client bool
}

type mark struct {
	X, Y float64
	// Label is written under the mark; "" for the op's start and its
	// checks, which crowd the start of the row.
	Label string
	// LabelY is where: marks alternate between two lines.
	LabelY float64
	Title  string
}

type bar struct {
	X, Y, W float64
	Title   string
}

// HTML is the report as one self-contained page: inline style and SVG,
// no script, nothing fetched.
func (r *Report) HTML() ([]byte, error) {
	tmpl, err := template.New("report").Funcs(template.FuncMap{
		"stamp": stamp,
		"dur":   func(d time.Duration) string { return round(d).String() },
		"secs":  func(s float64) string { return round(seconds(s)).String() },
	}).Parse(reportTemplate)
	if err != nil {
		return nil, fmt.Errorf("the report's template: %w", err)
	}
	var b bytes.Buffer
	err = tmpl.Execute(&b, struct {
		R        *Report
		Timeline timeline
	}{r, r.timeline()})
	if err != nil {
		return nil, fmt.Errorf("write the HTML report: %w", err)
	}
	return b.Bytes(), nil
}

func (r *Report) timeline() timeline {
	start, end := r.Started, r.Ended
	if end.Before(start) || end.Equal(start) {
		end = start.Add(time.Second)
	}
	span := end.Sub(start).Seconds()
	x := func(t time.Time) float64 {
		if t.IsZero() {
			return chartLeft + chartWidth
		}
		f := t.Sub(start).Seconds() / span
		return chartLeft + chartWidth*math.Max(0, math.Min(1, f))
	}
	tl := timeline{Width: chartLeft + chartWidth + 20}
	step := tickStep(span)
	for s := 0.0; s <= span+1e-9; s += step {
		tl.Ticks = append(tl.Ticks, tick{X: chartLeft + chartWidth*s/span, Label: round(seconds(s)).String()})
	}
	y := chartTop
	for _, p := range r.Phases {
		for _, op := range p.Ops {
			for _, svc := range op.Services {
				rw := row{Label: fmt.Sprintf("%s: %s", p.Name, svc.Service), Y: y, SpanX1: x(op.Created), SpanX2: x(op.Ended)}
				for i, m := range svc.Milestones {
					if !m.Reached {
						continue
					}
					mk := mark{X: x(m.At), Y: y, LabelY: y + 16 + 10*float64(len(rw.Marks)%2),
						Title: fmt.Sprintf("%s: %s after the op's start (%s)", m.Name, round(seconds(m.AfterSeconds)), m.Status)}
					switch {
					case i == 0 && r.Fault != nil && p.Name == "failover":
						mk.Label = "detected" // the failover began
					case i > 0 && !strings.HasPrefix(m.Step, "check-"):
						mk.Label = m.Name
					}
					rw.Marks = append(rw.Marks, mk)
				}
				tl.Rows = append(tl.Rows, rw)
				y += rowHeight
			}
		}
	}
	if pr := r.Probe; pr != nil {
		rw := row{Label: "client", Y: y, SpanX1: x(pr.Started), SpanX2: x(pr.Ended), Client: true}
		for _, o := range pr.Outages {
			x1, x2 := x(o.Start), x(o.End)
			rw.Outages = append(rw.Outages, bar{X: x1, Y: y - 7, W: math.Max(2, x2-x1),
				Title: fmt.Sprintf("outage of %s: %d failed requests; last error: %s", round(o.End.Sub(o.Start)), o.Failures, o.LastError)})
		}
		tl.Rows = append(tl.Rows, rw)
		y += rowHeight
	}
	tl.Height = y + 10
	if f := r.Fault; f != nil {
		tl.Events = append(tl.Events, tick{X: x(f.At), Label: "fault: " + f.Kind})
		if !f.Restored.IsZero() {
			tl.Events = append(tl.Events, tick{X: x(f.Restored), Label: "restored"})
		}
	}
	return tl
}

// tickStep is a round step giving about eight ticks over span seconds.
func tickStep(span float64) float64 {
	for _, s := range []float64{0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600} {
		if span/s <= 8 {
			return s
		}
	}
	return math.Ceil(span / 8)
}
