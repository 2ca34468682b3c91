package runbooks

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zdt-project/zdt/site"
)

// Markdown renders a runbook for a change ticket: its description, its
// parameters, and its steps group by group, with their conditions,
// timeouts and rollbacks.
func Markdown(rb *Runbook) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Runbook %s\n\n", rb.Name)
	if rb.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(rb.Description))
	}
	fmt.Fprintf(&b, "Source: `%s`\n\n", rb.File)
	if len(rb.Params) > 0 {
		b.WriteString("## Parameters\n\n| Name | Type | Required | Default | Description |\n|---|---|---|---|---|\n")
		for _, p := range rb.Params {
			def := "-"
			if p.HasDefault {
				def = "`" + cell(p.Default) + "`"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", p.Name, p.Type, yesNo(p.Required), def, cell(p.Description))
		}
		b.WriteString("\n")
	}
	n := 0
	for _, g := range rb.Groups {
		if g.Name != "" {
			fmt.Fprintf(&b, "## Group %s\n\n", g.Name)
		} else {
			b.WriteString("## Steps\n\n")
		}
		if g.Gate != nil {
			fmt.Fprintf(&b, "Starts once %s", describeCondition(g.Gate.Until))
			if g.Gate.Timeout > 0 {
				fmt.Fprintf(&b, " (the op fails if not within %s)", g.Gate.Timeout)
			}
			b.WriteString(".\n\n")
		}
		for _, st := range g.Steps {
			n++
			writeStep(&b, n, st)
		}
		b.WriteString("\n")
	}
	if len(rb.Rollback) > 0 {
		b.WriteString("## Rollback\n\nRun only when a failed step names them.\n\n")
		for _, st := range rb.Rollback {
			n++
			writeStep(&b, n, st)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func writeStep(b *strings.Builder, n int, st Step) {
	fmt.Fprintf(b, "%d. **%s**", n, st.Action)
	if st.ID != "" {
		fmt.Fprintf(b, " `%s`", st.ID)
	}
	if len(st.With) > 0 {
		var args []string
		for _, k := range slices.Sorted(maps.Keys(st.With)) {
			args = append(args, fmt.Sprintf("%s=`%s`", k, st.With[k]))
		}
		fmt.Fprintf(b, ": %s", strings.Join(args, ", "))
	}
	var notes []string
	if st.When != nil {
		notes = append(notes, "only when "+describeCondition(*st.When))
	}
	if st.Until != nil {
		notes = append(notes, "until "+describeCondition(*st.Until))
	}
	if st.Timeout > 0 {
		notes = append(notes, "timeout "+st.Timeout.String())
	}
	if len(st.OnFailure) > 0 {
		notes = append(notes, "on failure: rollback "+strings.Join(st.OnFailure, ", "))
	}
	if len(notes) > 0 {
		fmt.Fprintf(b, " (%s)", strings.Join(notes, "; "))
	}
	b.WriteString("\n")
}

// PlanMarkdown renders a plan: the runbook, its arguments, and what each
// step would act on now.
func PlanMarkdown(p *Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Plan of runbook %s\n\n", p.Runbook.Name)
	if len(p.Args) > 0 {
		b.WriteString("| Parameter | Value |\n|---|---|\n")
		for _, k := range slices.Sorted(maps.Keys(p.Args)) {
			fmt.Fprintf(&b, "| %s | %s |\n", k, cell(p.Args[k]))
		}
		b.WriteString("\n")
	}
	b.WriteString("| # | Group | Step | Action | With | Now |\n|---|---|---|---|---|---|\n")
	for i, s := range p.Steps {
		id := s.ID
		if s.Rollback {
			id += " (rollback)"
		}
		var with []string
		for _, k := range slices.Sorted(maps.Keys(s.With)) {
			with = append(with, k+"="+s.With[k])
		}
		now := s.Now
		if s.When != "" {
			now = "when " + s.When + "; " + now
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", i+1, cell(s.Group), cell(id), s.Action, cell(strings.Join(with, " ")), cell(now))
	}
	if len(p.Blockers) > 0 {
		b.WriteString("\n**Refused now:**\n\n")
		for _, why := range p.Blockers {
			fmt.Fprintf(&b, "- %s\n", why)
		}
	}
	return b.String()
}

// describeCondition says a condition in words.
func describeCondition(c site.Condition) string {
	switch {
	case c.SiteUp != "":
		return "site " + c.SiteUp + " is up"
	case c.SiteDown != "":
		return "site " + c.SiteDown + " is not up"
	case c.SiteFenced != "":
		return "site " + c.SiteFenced + " is fenced"
	case c.SiteUnfenced != "":
		return "site " + c.SiteUnfenced + " is not fenced"
	case c.SiteDrained != "":
		return "site " + c.SiteDrained + " is drained"
	case c.SiteReadyForFailback != "":
		return "site " + c.SiteReadyForFailback + " is back clean, ready to be failed back"
	case c.HostEmpty != "":
		return "host " + c.HostEmpty + " runs no guest"
	case c.GroupInSync != "":
		return "group " + c.GroupInSync + " is in sync"
	case c.ServiceAt != nil:
		return "service " + c.ServiceAt.Service + " is at site " + c.ServiceAt.Site
	case c.Not != nil:
		return "not (" + describeCondition(*c.Not) + ")"
	case len(c.All) > 0:
		return joinConditions(c.All, " and ")
	case len(c.Any) > 0:
		return joinConditions(c.Any, " or ")
	}
	return "(nothing)"
}

func joinConditions(cs []site.Condition, sep string) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = describeCondition(c)
	}
	return "(" + strings.Join(parts, sep) + ")"
}

// cell makes a value safe in a Markdown table cell.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r\n", "<br>")
	return strings.ReplaceAll(s, "\n", "<br>")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
