package reconciler

import (
	"fmt"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/replication/drbd"
	"github.com/zdt-project/zdt/replication/postgres"
	"github.com/zdt-project/zdt/site/config"
)

// BuildMembers makes the drivers of the site's members, by group, and a
// function that closes them. A PostgreSQL member's Password (read from its
// password file) is added to its conninfo; a DRBD member drives its
// resource with drbdadm and drbdsetup.
func BuildMembers(cl *config.Cluster, siteName string, log *zap.Logger) (map[string]replication.Member, func(), error) {
	if log == nil {
		log = zap.NewNop()
	}
	members := map[string]replication.Member{}
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for _, g := range cl.Replication {
		m, ok := g.Member(siteName)
		if !ok {
			continue
		}
		switch g.Driver {
		case config.DriverPostgres:
			pm, err := postgres.New(postgres.Config{
				Name:                siteName,
				ConnString:          WithPassword(m.Conn, m.Password),
				ReplicationConnInfo: m.ReplicationConn,
				DataDir:             m.DataDir,
				BinDir:              m.BinDir,
				OSUser:              m.OSUser,
				Log:                 log.With(zap.String("group", g.Name)),
			})
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("replication group %s: %w", g.Name, err)
			}
			closers = append(closers, pm.Close)
			members[g.Name] = pm
		case config.DriverDRBD:
			dm, err := drbd.NewMember(drbd.Config{Resource: m.Resource})
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("replication group %s: %w", g.Name, err)
			}
			members[g.Name] = dm
		default:
			log.Warn("replication group skipped: unknown driver", zap.String("group", g.Name), zap.String("driver", g.Driver))
		}
	}
	return members, closeAll, nil
}

// WithPassword adds password to a libpq conninfo, keyword=value or URI.
func WithPassword(conn, password string) string {
	if password == "" {
		return conn
	}
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		if u, err := url.Parse(conn); err == nil {
			q := u.Query()
			q.Set("password", password)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return conn + " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password) + "'"
}
