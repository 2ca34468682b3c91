package statustable

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/zdt-project/zdt/site"
)

// writeEtcdMembers writes one line per etcd member: its database's size,
// the part in use and its quota, whether it leads, a warning when the
// database nears the quota, or why the member could not be read.
func writeEtcdMembers(w io.Writer, st site.Status) {
	if len(st.EtcdMembers) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, m := range st.EtcdMembers {
		name := m.Name
		if name == "" {
			name = m.Endpoint
		}
		fmt.Fprintf(tw, "ETCD MEMBER %s\t%s\n", name, etcdMemberNote(m))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

// etcdMemberNote is what the status line says of a member.
func etcdMemberNote(m site.EtcdMember) string {
	if m.Error != "" {
		return fmt.Sprintf("not read (%s): %s", m.Endpoint, m.Error)
	}
	note := m.Sizes()
	if m.Leader {
		note += ", leader"
	}
	if m.NoLeader {
		note += ", NO LEADER: cut off from the other members? (see docs/operations.md, a site's etcd member lost)"
	}
	if m.QuotaShare() > site.EtcdQuotaWarn {
		note += fmt.Sprintf("   WARNING over %.0f%% of the quota, where etcd refuses every write: see docs/operations.md, etcd's database", 100*site.EtcdQuotaWarn)
	}
	return note
}
