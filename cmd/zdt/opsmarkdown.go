package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
)

// writeOpMarkdown writes an op in full as Markdown, for a change ticket:
// what writeOp shows, as tables. Times are in UTC to the millisecond.
func writeOpMarkdown(w io.Writer, op *site.Op, now time.Time) error {
	var b strings.Builder
	title := fmt.Sprintf("Op %s: %s", op.ID, op.Kind)
	if op.Runbook != "" {
		title += ", runbook " + op.Runbook
	}
	fmt.Fprintf(&b, "# %s\n\n", mdText(title))
	writeOpSummaryMarkdown(&b, op, now)

	b.WriteString("\n## Steps\n\n")
	if len(op.Steps) == 0 {
		b.WriteString("No steps.\n")
	} else {
		writeStepsMarkdown(&b, op, now)
	}
	for _, tl := range failover.Timeline(op) {
		b.WriteString("\n")
		writeTimelineMarkdown(&b, op, tl)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeOpSummaryMarkdown writes the table of what the op is and how it
// ended.
func writeOpSummaryMarkdown(b *strings.Builder, op *site.Op, now time.Time) {
	mdRow(b, "Field", "Value")
	mdRow(b, "---", "---")
	row := func(field, value string) { mdRow(b, field, mdCell(value)) }
	row("kind", op.Kind)
	if op.Runbook != "" {
		row("runbook", op.Runbook)
	}
	if len(op.Params) > 0 {
		row("params", site.ParamString(op.Params))
	}
	row("requested by", op.Who)
	outcome := string(op.Outcome)
	if op.Error != "" {
		outcome += ": " + op.Error
	}
	row("outcome", outcome)
	row("created", stamp(op.Created))
	if op.Finished() {
		row("ended", fmt.Sprintf("%s (took %s)", stamp(op.Ended), formatDuration(site.OpDuration(op, now))))
	} else {
		row("running for", formatDuration(site.OpDuration(op, now)))
	}
	row("coordinators", strings.Join(op.Coordinators, ", "))
	if r := op.AbortRequested; r != nil {
		row("abort requested", requestString(r))
	}
	if op.RollingBack != "" {
		verb := "rolled back"
		if !op.Finished() {
			verb = "rolling back"
		}
		step := op.RollingBack
		for i, st := range op.Steps {
			if st.ID == op.RollingBack && !st.Rollback {
				step = fmt.Sprintf("%d %s", i+1, mdStepName(st))
				break
			}
		}
		row("rollback", fmt.Sprintf("%s after step %s failed", verb, step))
	}
}

// writeStepsMarkdown writes the table of the op's steps, then the
// resources the steps touched as a nested list.
func writeStepsMarkdown(b *strings.Builder, op *site.Op, now time.Time) {
	mdRow(b, "#", "Step", "Group", "Status", "By", "Started", "Ended", "Took", "Detail")
	mdRow(b, "--:", "---", "---", "---", "---", "---", "---", "--:", "---")
	for i, st := range op.Steps {
		mdRow(b, fmt.Sprint(i+1), mdCell(mdStepName(st)), mdCell(st.Group), mdCell(string(st.Status)), mdCell(st.By),
			stamp(st.Started), stamp(st.Ended), mdCell(stepTook(st, now)), mdCell(stepDetail(st)))
	}
	header := false
	for i, st := range op.Steps {
		if len(st.Resources) == 0 {
			continue
		}
		if !header {
			b.WriteString("\n### Resources\n\n")
			header = true
		}
		fmt.Fprintf(b, "- step %d, %s:\n", i+1, mdText(mdStepName(st)))
		for _, r := range st.Resources {
			item := r.Resource + ": " + r.Outcome
			if r.Detail != "" {
				item += " (" + r.Detail + ")"
			}
			fmt.Fprintf(b, "  - %s\n", mdText(item))
		}
	}
}

// writeTimelineMarkdown writes one service's timeline.
func writeTimelineMarkdown(b *strings.Builder, op *site.Op, tl failover.ServiceTimeline) {
	rto := formatDuration(time.Duration(tl.RTOSeconds * float64(time.Second)))
	heading := fmt.Sprintf("Timeline of service %s: RTO %s", tl.Service, rto)
	switch {
	case tl.Complete:
	case op.Finished():
		heading = fmt.Sprintf("Timeline of service %s: RTO so far %s; the op %s before the last milestone", tl.Service, rto, op.Outcome)
	default:
		heading = fmt.Sprintf("Timeline of service %s: RTO so far %s", tl.Service, rto)
	}
	fmt.Fprintf(b, "## %s\n\n", mdText(heading))
	mdRow(b, "Milestone", "At", "After", "Status")
	mdRow(b, "---", "---", "--:", "---")
	for _, m := range tl.Milestones {
		after, status := milestoneCells(m)
		mdRow(b, mdCell(m.Name), stamp(m.At), after, mdCell(status))
	}
}

// mdStepName names a step by its runbook ID, when it has one, and its
// action: "confirm-window (confirm)"; "(rollback)" marks the steps of a
// runbook's rollback section.
func mdStepName(st site.Step) string {
	name := site.StepLabel(st)
	if st.ID != "" {
		name = st.ID + " (" + name + ")"
	}
	if st.Rollback {
		name += " (rollback)"
	}
	return name
}

// stepTook is how long a step took, or has been running; "-" when it has
// not started.
func stepTook(st site.Step, now time.Time) string {
	switch {
	case st.Started.IsZero():
	case st.Status == site.StepRunning:
		return formatDuration(now.Sub(st.Started)) + " so far"
	case !st.Ended.IsZero():
		return formatDuration(st.Ended.Sub(st.Started))
	}
	return "-"
}

// stepDetail is what the Detail column says of a step: who approved it,
// its detail (lines kept), and the runbook's when, timeout and on failure.
func stepDetail(st site.Step) string {
	var lines []string
	if r := st.Approved; r != nil {
		lines = append(lines, "approved "+requestString(r))
	}
	if d := strings.TrimRight(st.Detail, " \t\r\n"); d != "" {
		lines = append(lines, d)
	}
	var settings []string
	if st.When != nil {
		settings = append(settings, "when "+conditionString(*st.When))
	}
	if st.Timeout > 0 {
		settings = append(settings, "timeout "+formatDuration(st.Timeout))
	}
	if len(st.OnFailure) > 0 {
		settings = append(settings, "on failure "+strings.Join(st.OnFailure, ", "))
	}
	if len(settings) > 0 {
		lines = append(lines, strings.Join(settings, "; "))
	}
	return strings.Join(lines, "\n")
}

// requestString is "by alice at 2026-12-02T03:13:00.000Z: why".
func requestString(r *site.Request) string {
	s := fmt.Sprintf("by %s at %s", r.By, stamp(r.At))
	if r.Reason != "" {
		s += ": " + oneLine(r.Reason)
	}
	return s
}

// conditionString writes a runbook condition as calls:
// "all(site_down(c), not(site_fenced(c)))".
func conditionString(c site.Condition) string {
	var parts []string
	add := func(name, arg string) {
		if arg != "" {
			parts = append(parts, name+"("+arg+")")
		}
	}
	add("site_up", c.SiteUp)
	add("site_down", c.SiteDown)
	add("site_fenced", c.SiteFenced)
	add("site_unfenced", c.SiteUnfenced)
	add("site_drained", c.SiteDrained)
	add("group_in_sync", c.GroupInSync)
	if s := c.ServiceAt; s != nil {
		add("service_at", s.Service+", "+s.Site)
	}
	list := func(cs []site.Condition) string {
		var args []string
		for _, c := range cs {
			args = append(args, conditionString(c))
		}
		return strings.Join(args, ", ")
	}
	add("all", list(c.All))
	add("any", list(c.Any))
	if c.Not != nil {
		add("not", conditionString(*c.Not))
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return strings.Join(parts, " and ")
}

// mdRow writes one table row of cells already escaped.
func mdRow(b *strings.Builder, cells ...string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

// mdCell makes text a table cell: escaped, its lines joined by <br>, "-"
// when empty.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.TrimSpace(s)
	if s == "" {
		return "-"
	}
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		lines[i] = mdEscape(strings.TrimRight(line, " \t"))
	}
	return strings.Join(lines, "<br>")
}

// mdText is text on one line (a heading, a list item), escaped.
func mdText(s string) string { return mdEscape(oneLine(s)) }

// mdEscape escapes what Markdown would read as markup inside a line:
// emphasis, code, links, HTML, and the pipes that end a table cell.
func mdEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '|', '~':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
