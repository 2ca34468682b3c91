package config

import (
	"bytes"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// The replication drivers.
const (
	DriverPostgres = "postgres"
	DriverDRBD     = "drbd"
)

// ReplicationGroup is mirrored storage with one member per site: one
// primary, the others following it.
type ReplicationGroup struct {
	Name   string
	Driver string // DriverPostgres or DriverDRBD
	// Synchronous: zdt keeps the primary replicating synchronously to at
	// least one other member (PostgreSQL: synchronous_standby_names
	// 'ANY 1 (...)'), so a promotion loses no acknowledged write.
	Synchronous bool
	Members     []ReplicationMember
}

// Member returns the group's member at site.
func (g ReplicationGroup) Member(site string) (ReplicationMember, bool) {
	for _, m := range g.Members {
		if m.Site == site {
			return m, true
		}
	}
	return ReplicationMember{}, false
}

// ReplicationMember is a group's member at one site.
type ReplicationMember struct {
	Site string
	// PostgreSQL: Conn is the libpq conninfo of an administrative session
	// (observe, promote, fence); Password, read from PasswordFile, is added
	// to it. ReplicationConn is the conninfo the other members stream from
	// when this one is primary. DataDir, BinDir and OSUser give local
	// control of the server, needed to rewind and restart it.
	Conn            string
	Password        string
	PasswordFile    string
	ReplicationConn string
	DataDir         string
	BinDir          string
	OSUser          string
	// DRBD: the resource name.
	Resource string
}

// RPO is a service's recovery point objective: the most a promotion may
// lose. A negative limit is not checked; a config file cannot set one.
type RPO struct {
	MaxLagBytes   int64
	MaxLagSeconds float64
	RequireSync   bool
}

// The RPO defaults: a standby may be promoted when it is at most 16 MiB and
// 30 s behind.
const (
	DefaultMaxLagBytes   = 16 << 20
	DefaultMaxLagSeconds = 30
)

type fileReplication struct {
	Groups []fileReplicationGroup `yaml:"groups"`
}

type fileReplicationGroup struct {
	Name        string                  `yaml:"name"`
	Driver      string                  `yaml:"driver"`
	Synchronous bool                    `yaml:"synchronous"`
	Members     []fileReplicationMember `yaml:"members"`
}

type fileReplicationMember struct {
	Site            string `yaml:"site"`
	Conn            string `yaml:"conn"`
	PasswordFile    string `yaml:"password_file"`
	ReplicationConn string `yaml:"replication_conn"`
	DataDir         string `yaml:"data_dir"`
	BinDir          string `yaml:"bin_dir"`
	OSUser          string `yaml:"os_user"`
	Resource        string `yaml:"resource"`
}

type fileRPO struct {
	MaxLagBytes   *int64   `yaml:"max_lag_bytes"`
	MaxLagSeconds *float64 `yaml:"max_lag_seconds"`
	RequireSync   bool     `yaml:"require_sync"`
}

func (f fileReplication) build(c *checker, sites []Site) []ReplicationGroup {
	names := map[string]string{}
	paths := c.elementPaths("replication.groups", len(f.Groups))
	groups := make([]ReplicationGroup, len(f.Groups))
	for i, g := range f.Groups {
		groups[i] = g.build(c, paths[i], sites, names)
	}
	return groups
}

func (f fileReplicationGroup) build(c *checker, field string, sites []Site, names map[string]string) ReplicationGroup {
	g := ReplicationGroup{Name: f.Name, Driver: f.Driver, Synchronous: f.Synchronous}
	c.checkUniqueName(field+".name", f.Name, "replication group", "the group's name, like pg", names)
	switch f.Driver {
	case DriverPostgres, DriverDRBD:
	case "":
		c.add(field+".driver", "required: postgres or drbd")
	default:
		c.add(field+".driver", "unknown driver %q: want postgres or drbd", f.Driver)
	}
	if f.Synchronous && f.Driver == DriverDRBD {
		c.add(field+".synchronous", "zdt manages synchronous replication for postgres only; DRBD's protocol C is set in its resource file")
	}
	if len(f.Members) < 2 {
		c.add(field+".members", "need at least 2 members (one per site), have %d", len(f.Members))
	}
	siteNames, known := knownSites(c, sites)
	seen := map[string]string{}
	paths := c.elementPaths(field+".members", len(f.Members))
	for i, m := range f.Members {
		g.Members = append(g.Members, m.build(c, paths[i], f.Driver, siteNames, known, seen))
	}
	return g
}

func (f fileReplicationMember) build(c *checker, field, driver string, sites []string, known bool, seen map[string]string) ReplicationMember {
	m := ReplicationMember{Site: f.Site, Conn: f.Conn, ReplicationConn: f.ReplicationConn,
		BinDir: f.BinDir, OSUser: f.OSUser, Resource: f.Resource}
	switch {
	case f.Site == "":
		c.add(field+".site", "required: the site this member runs at")
	case seen[f.Site] != "":
		c.add(field+".site", "site %s already has a member (line %d); a group has one member per site", f.Site, c.line(seen[f.Site]))
	case known && !slices.Contains(sites, f.Site):
		c.add(field+".site", "unknown site %q (sites are %s)", f.Site, strings.Join(sites, ", "))
	default:
		seen[f.Site] = field + ".site"
	}
	switch driver {
	case DriverPostgres:
		c.pgConn(field+".conn", f.Conn, "the conninfo of an administrative session, like host=10.0.0.5 port=5432 user=zdt dbname=postgres")
		c.pgConn(field+".replication_conn", f.ReplicationConn, "the conninfo the other members stream from, like host=10.0.0.5 port=5432 user=replicator")
		if f.PasswordFile != "" {
			m.PasswordFile = c.checkFile(field+".password_file", f.PasswordFile)
			if data, err := os.ReadFile(m.PasswordFile); err == nil {
				m.Password = string(bytes.TrimRight(data, "\r\n"))
			}
		}
		if f.DataDir != "" {
			m.DataDir = c.absPath(f.DataDir)
		}
		if f.BinDir != "" {
			m.BinDir = c.absPath(f.BinDir)
		}
		if f.Resource != "" {
			c.add(field+".resource", "is for drbd members; a postgres member has conn and replication_conn")
		}
	case DriverDRBD:
		if f.Resource == "" {
			c.add(field+".resource", "required: the DRBD resource name, like r0")
		}
		if f.Conn != "" || f.ReplicationConn != "" {
			c.add(field, "conn and replication_conn are for postgres members; a drbd member has a resource")
		}
	}
	return m
}

// pgConn checks a required libpq conninfo.
func (c *checker) pgConn(field, raw, example string) {
	if raw == "" {
		c.add(field, "required: %s", example)
		return
	}
	if _, err := pgconn.ParseConfig(raw); err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "cannot parse `"+raw+"`: ")
		c.add(field, "not a valid conninfo: %s", msg)
	}
}

// checkGroup checks a service's replication group: it exists and has a
// member at every site of the service.
func (seen *serviceChecks) checkGroup(c *checker, field, name string, sites []string) {
	i := slices.IndexFunc(seen.groups, func(g ReplicationGroup) bool { return g.Name == name })
	if i < 0 {
		if !c.isBroken("replication") {
			c.add(field, "unknown replication group %q; define it under replication.groups", name)
		}
		return
	}
	known, _ := seen.siteNames(c)
	for _, s := range sites {
		if _, ok := seen.groups[i].Member(s); !ok && slices.Contains(known, s) {
			c.add(field, "group %s has no member at site %s, which may serve this service: the site could not be made primary", name, s)
		}
	}
}

func (f *fileRPO) build(c *checker, field, group string, groups []ReplicationGroup) RPO {
	r := RPO{MaxLagBytes: DefaultMaxLagBytes, MaxLagSeconds: DefaultMaxLagSeconds}
	if f == nil {
		return r
	}
	if group == "" {
		c.add(field, "a service without a replication_group has nothing to promote; drop rpo or set replication_group")
	}
	if f.MaxLagBytes != nil {
		r.MaxLagBytes = *f.MaxLagBytes
		c.checkMaxLagBytes(field+".max_lag_bytes", r.MaxLagBytes)
	}
	if f.MaxLagSeconds != nil {
		r.MaxLagSeconds = *f.MaxLagSeconds
		c.checkMaxLagSeconds(field+".max_lag_seconds", r.MaxLagSeconds)
	}
	r.RequireSync = f.RequireSync
	if r.RequireSync {
		for _, g := range groups {
			if g.Name == group && !g.Synchronous {
				c.add(field+".require_sync", "group %s is not synchronous: set synchronous: true on it, or nothing could ever be promoted", group)
			}
		}
	}
	return r
}

// checkMaxLagBytes checks an RPO's byte limit. Below 0 it would mean no
// limit at all, which must not come from a stray minus sign.
func (c *checker) checkMaxLagBytes(field string, v int64) {
	if v < 0 {
		c.add(field, "%d is negative: give the most bytes a standby may be behind and still be promoted, 0 or more "+
			"(0: no lag at all); leave it out for the default, %d (16 MiB), or write a large limit such as 1073741824 (1 GiB)",
			v, DefaultMaxLagBytes)
	}
}

// checkMaxLagSeconds checks an RPO's time limit, which must be a finite
// number of seconds, 0 or more (see checkMaxLagBytes).
func (c *checker) checkMaxLagSeconds(field string, v float64) {
	what := "is negative"
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		what = "is not a number of seconds"
	case v >= 0:
		return
	}
	c.add(field, "%s %s: give the most seconds a standby may be behind and still be promoted, 0 or more "+
		"(0: no lag at all); leave it out for the default, %d, or write a large limit such as 3600",
		strconv.FormatFloat(v, 'g', -1, 64), what, DefaultMaxLagSeconds)
}
