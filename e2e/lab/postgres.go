package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstallPostgres is how to get the PostgreSQL server on Debian. Without
// it the lab runs without its replication group.
const InstallPostgres = "apt-get install -y --no-install-recommends postgresql"

// A site's PostgreSQL server lives in DIR/<site>/postgres: its data
// directory, its log (the logging collector's, whoever started the
// server) and pg_ctl's startup log. The passwords are in DIR/secrets.
const (
	pgDirName      = "postgres"
	pgDataName     = "data"
	pgLogName      = "postgresql.log"
	pgStartLogName = "startup.log"
	secretsDirName = "secrets"
	// pgPasswordName holds the password of zdt, the superuser the
	// controllers' sessions log in as (the config's password_file).
	pgPasswordName = "pg.pass"
	// pgPassFileName is the libpq password file of zdt_repl, the user the
	// standbys stream as and pg_rewind reads its source as.
	pgPassFileName = "pgpass"
	pgAdminUser    = "zdt"
	pgReplUser     = "zdt_repl"
	// pgOSUser runs the servers when the lab runs as root: PostgreSQL
	// refuses to run as root.
	pgOSUser = "postgres"
	// pgCommandTimeout bounds one initdb, pg_basebackup or pg_ctl.
	pgCommandTimeout = 2 * time.Minute
)

// pgPrograms are what the lab and the controllers run from the bin
// directory.
var pgPrograms = []string{"postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_rewind"}

// pgConf is every server's postgresql.conf, after initdb's: quick rather
// than durable (it is a lab), and what the driver needs (wal_log_hints for
// pg_rewind, WAL kept for a standby to catch up or be rewound).
var pgConf = []string{
	"unix_socket_directories = ''",
	"fsync = off",
	"shared_buffers = 16MB",
	"max_connections = 40",
	"wal_level = replica",
	"wal_log_hints = on",
	"max_wal_senders = 10",
	"wal_keep_size = '256MB'",
	"hot_standby = on",
	"wal_receiver_status_interval = 1s",
	"wal_retrieve_retry_interval = 500ms",
	"logging_collector = on",
	"log_filename = '" + pgLogName + "'",
	"log_rotation_age = 0",
	"log_rotation_size = 0",
	"log_line_prefix = '%m [%p] %b %a '",
}

// pgHBA lets zdt and zdt_repl in over loopback, with their passwords.
const pgHBA = `# written by zdt lab: password authentication over loopback only, and
# over the sites' fabric of a lab in network namespaces
host replication ` + pgReplUser + ` 127.0.0.0/8 scram-sha-256
host all all 127.0.0.0/8 scram-sha-256
host replication ` + pgReplUser + ` 198.51.100.0/24 scram-sha-256
host all all 198.51.100.0/24 scram-sha-256
`

// ErrNoPostgres is wrapped by the error of FindPostgres when the
// PostgreSQL server is not installed.
var ErrNoPostgres = errors.New("the PostgreSQL server is not installed")

// FindPostgres returns the newest /usr/lib/postgresql/<version>/bin that
// has the server and its tools, or an error wrapping ErrNoPostgres that says
// what to install.
func FindPostgres() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if checkPostgresBinDir(d) == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w (no /usr/lib/postgresql/*/bin/postgres): install it with `%s`", ErrNoPostgres, InstallPostgres)
}

// checkPostgresBinDir checks that dir has every program of pgPrograms.
func checkPostgresBinDir(dir string) error {
	for _, p := range pgPrograms {
		if _, err := exec.LookPath(filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("%w (%v): install it with `%s`", ErrNoPostgres, err, InstallPostgres)
		}
	}
	return nil
}

// pgUser is who runs the servers: the postgres user when the lab runs as
// root, the lab's own user otherwise (name "", cred nil).
type pgUser struct {
	name string
	cred *syscall.Credential
	home string
}

func lookupPGUser(name string) (pgUser, error) {
	if name == "" {
		return pgUser{}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return pgUser{}, fmt.Errorf("PostgreSQL refuses to run as root, and there is no %s user to run it as (%w): install PostgreSQL with `%s`",
			name, err, InstallPostgres)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return pgUser{name: name, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, home: u.HomeDir}, nil
}

// own gives a file or directory to the servers' user.
func (u pgUser) own(path string) error {
	if u.cred == nil {
		return nil
	}
	return os.Chown(path, int(u.cred.Uid), int(u.cred.Gid))
}

// canTraverse reports whether the user may search the directory.
func (u pgUser) canTraverse(fi fs.FileInfo) bool {
	if u.cred == nil {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == u.cred.Uid:
		return perm&0o100 != 0
	case st.Gid == u.cred.Gid:
		return perm&0o010 != 0
	}
	return perm&0o001 != 0
}

// pgSetup is what a new lab's config says of its servers; a zero pgSetup
// means the lab has none.
type pgSetup struct {
	binDir string
	user   pgUser
}

// postgresSetup finds the PostgreSQL binaries and who runs them for a new
// lab in labDir, or says why the lab cannot have them: they are not
// installed, or, as root, the postgres user cannot reach the lab.
func (o Options) postgresSetup(labDir string) (pgSetup, error) {
	bin := o.Postgres
	if bin == "" {
		var err error
		if bin, err = FindPostgres(); err != nil {
			return pgSetup{}, err
		}
	} else if err := checkPostgresBinDir(bin); err != nil {
		return pgSetup{}, err
	}
	s := pgSetup{binDir: bin}
	if os.Geteuid() != 0 {
		return s, nil
	}
	var err error
	if s.user, err = lookupPGUser(pgOSUser); err != nil {
		return pgSetup{}, err
	}
	// The lab makes its own directory reachable; the ones above it are
	// not the lab's to change.
	for d := filepath.Dir(labDir); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && !s.user.canTraverse(fi) {
			return pgSetup{}, fmt.Errorf("the PostgreSQL servers run as user %s, which cannot reach %s: %s is mode %s; give a lab directory it can reach, or allow it with `chmod o+x %s`",
				s.user.name, labDir, d, fi.Mode().Perm(), d)
		}
		if d == filepath.Dir(d) {
			return s, nil
		}
	}
}

// pgGroup is the lab's replication group, as its zdt.yaml says.
type pgGroup struct {
	name    string
	binDir  string
	user    pgUser
	primary string // the site of the first primary
	members []pgMember
}

// pgMember is one server of the group.
type pgMember struct {
	site string
	host string // the address it listens on
	port string
}

func (g *pgGroup) member(site string) (pgMember, bool) {
	for _, m := range g.members {
		if m.site == site {
			return m, true
		}
	}
	return pgMember{}, false
}

// labGroupFile is the part of a replication group of zdt.yaml the lab
// needs to run its servers.
type labGroupFile struct {
	Name    string `yaml:"name"`
	Driver  string `yaml:"driver"`
	Members []struct {
		Site   string `yaml:"site"`
		Conn   string `yaml:"conn"`
		BinDir string `yaml:"bin_dir"`
		OSUser string `yaml:"os_user"`
	} `yaml:"members"`
}

// pgGroup returns the lab's PostgreSQL group, nil if the config has none:
// the first postgres group, its first primary the first site of the first
// service that uses it.
func (f *labFile) pgGroup(dir string) (*pgGroup, error) {
	i := slices.IndexFunc(f.Replication.Groups, func(g labGroupFile) bool { return g.Driver == "postgres" })
	if i < 0 {
		return nil, nil
	}
	gf := f.Replication.Groups[i]
	if len(gf.Members) == 0 {
		return nil, fmt.Errorf("replication group %s has no members", gf.Name)
	}
	g := &pgGroup{name: gf.Name, binDir: absIn(dir, gf.Members[0].BinDir)}
	var err error
	if g.user, err = lookupPGUser(gf.Members[0].OSUser); err != nil {
		return nil, err
	}
	for _, m := range gf.Members {
		kv := conninfoFields(m.Conn)
		g.members = append(g.members, pgMember{site: m.Site, host: kv["host"], port: kv["port"]})
	}
	for _, svc := range f.Services {
		if svc.ReplicationGroup == g.name && len(svc.Sites) > 0 {
			g.primary = svc.Sites[0]
			break
		}
	}
	if _, ok := g.member(g.primary); !ok {
		g.primary = g.members[0].site
	}
	return g, nil
}

// conninfoFields reads the key=value pairs of a conninfo the lab wrote
// (no quoted values).
func conninfoFields(conn string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(conn) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

// HasPostgres reports whether the lab has its PostgreSQL replication group.
func (l *Lab) HasPostgres() bool { return l.pg != nil }

// hasPostgres reports whether the site has a server of the group.
func (l *Lab) hasPostgres(site string) bool {
	if l.pg == nil {
		return false
	}
	_, ok := l.pg.member(site)
	return ok
}

// PostgresGroup is the name of the lab's replication group, "" if none.
func (l *Lab) PostgresGroup() string {
	if l.pg == nil {
		return ""
	}
	return l.pg.name
}

// PostgresConnString is a session of the superuser zdt on the site's
// server, password included, for people and tests to look at it.
func (l *Lab) PostgresConnString(site string) (string, error) {
	m, ok := l.pg.memberOK(site)
	if !ok {
		return "", fmt.Errorf("site %s has no PostgreSQL server in this lab", site)
	}
	pw, err := readSecret(filepath.Join(l.dir, secretsDirName, pgPasswordName))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=postgres sslmode=disable connect_timeout=5",
		m.host, m.port, pgAdminUser, pw), nil
}

// PostgresClientURL is how a client of the group reaches its primary,
// wherever it is: every member's address, the first that takes writes
// (target_session_attrs=read-write), as the superuser zdt, password
// included; for drills' probes and people.
func (l *Lab) PostgresClientURL() (string, error) {
	if l.pg == nil {
		return "", errors.New("the lab has no PostgreSQL group")
	}
	pw, err := readSecret(filepath.Join(l.dir, secretsDirName, pgPasswordName))
	if err != nil {
		return "", err
	}
	var hosts []string
	for _, m := range l.pg.members {
		hosts = append(hosts, net.JoinHostPort(m.host, m.port))
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(pgAdminUser, pw), Host: strings.Join(hosts, ","), Path: "/postgres",
		RawQuery: "target_session_attrs=read-write&sslmode=disable&connect_timeout=2"}
	return u.String(), nil
}

func (g *pgGroup) memberOK(site string) (pgMember, bool) {
	if g == nil {
		return pgMember{}, false
	}
	return g.member(site)
}

// PostgresLogPath is the log of the site's PostgreSQL server.
func (l *Lab) PostgresLogPath(site string) string {
	return filepath.Join(l.pgDir(site), pgLogName)
}

// pgDir is DIR/<site>/postgres.
func (l *Lab) pgDir(site string) string { return filepath.Join(l.dir, site, pgDirName) }

// pgDataDir is the site's server's data directory.
func (l *Lab) pgDataDir(site string) string { return filepath.Join(l.pgDir(site), pgDataName) }

// pgDataPath is a data directory relative to the lab, as the config
// names it.
func pgDataPath(site string) string { return filepath.Join(site, pgDirName, pgDataName) }

// pgPassFile is the password file of the replication user.
func pgPassFile(labDir string) string { return filepath.Join(labDir, secretsDirName, pgPassFileName) }

// writeSecrets replaces DIR/secrets with new passwords for the servers'
// users, readable by the servers' user only (and root), or removes it when
// the lab has no servers.
func writeSecrets(dir string, t Topology, pg pgSetup) error {
	d := filepath.Join(dir, secretsDirName)
	if err := os.RemoveAll(d); err != nil {
		return fmt.Errorf("remove the old secrets: %w", err)
	}
	if t.Postgres == nil {
		return nil
	}
	if pg.user.cred != nil {
		// The servers' user reaches its data and its password file
		// through the lab directory.
		if err := addSearch(dir); err != nil {
			return err
		}
	}
	if err := os.Mkdir(d, 0o711); err != nil {
		return fmt.Errorf("create the secrets directory: %w", err)
	}
	if err := os.Chmod(d, 0o711); err != nil { // whatever the umask
		return err
	}
	admin, repl := make([]byte, 16), make([]byte, 16)
	_, _ = rand.Read(admin)
	_, _ = rand.Read(repl)
	files := map[string]string{
		pgPasswordName: hex.EncodeToString(admin) + "\n",
		pgPassFileName: "*:*:*:" + pgReplUser + ":" + hex.EncodeToString(repl) + "\n",
	}
	for name, data := range files {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			return fmt.Errorf("write the secrets: %w", err)
		}
		if err := pg.user.own(p); err != nil {
			return fmt.Errorf("give %s to %s: %w", p, pg.user.name, err)
		}
	}
	return nil
}

// addSearch lets everyone search (not list) a directory of the lab.
func addSearch(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o011 != 0o011 {
		return os.Chmod(dir, perm|0o011)
	}
	return nil
}

// readSecret reads a password file's one line.
func readSecret(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// replicationPassword is the password of zdt_repl, from its password file.
func (l *Lab) replicationPassword() (string, error) {
	line, err := readSecret(pgPassFile(l.dir))
	if err != nil {
		return "", err
	}
	f := strings.Split(line, ":")
	return f[len(f)-1], nil
}

// startPostgres starts the group's servers that do not run. A new lab's
// are made first: the first primary with initdb, the others cloned from it
// with pg_basebackup as its streaming standbys.
func (l *Lab) startPostgres() error {
	if !l.pgMade() {
		if err := l.makePostgres(); err != nil {
			return fmt.Errorf("make the PostgreSQL servers of group %s: %w", l.pg.name, err)
		}
	}
	for _, m := range l.pg.members {
		if _, ok := l.PostgresRunning(m.site); ok {
			continue
		}
		if err := l.pgStart(m.site); err != nil {
			return err
		}
	}
	return nil
}

// pgMade reports whether every server has its data directory.
func (l *Lab) pgMade() bool {
	for _, m := range l.pg.members {
		if _, err := os.Stat(filepath.Join(l.pgDataDir(m.site), "PG_VERSION")); err != nil {
			return false
		}
	}
	return true
}

// makePostgres makes the group's servers afresh and leaves the primary
// running.
func (l *Lab) makePostgres() error {
	g := l.pg
	for _, m := range g.members {
		if pid, ok := l.PostgresRunning(m.site); ok {
			return fmt.Errorf("%s is %w as pid %d: stop the lab first with `zdt lab stop --dir %s`", postgresOf(m.site), ErrRunning, pid, l.dir)
		}
	}
	for _, m := range g.members {
		dir := l.pgDir(m.site)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := errors.Join(addSearch(filepath.Dir(dir)), g.user.own(dir)); err != nil {
			return err
		}
	}
	p, _ := g.member(g.primary)
	pwfile := filepath.Join(l.dir, secretsDirName, pgPasswordName)
	if err := l.pgCommand(p.site, "initdb", "-D", l.pgDataDir(p.site), "-U", pgAdminUser, "--pwfile="+pwfile,
		"-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "-N"); err != nil {
		return err
	}
	if err := l.pgConfigure(p, true); err != nil {
		return err
	}
	if err := l.pgStart(p.site); err != nil {
		return err
	}
	if err := l.pgCreateReplUser(p); err != nil {
		return err
	}
	for _, m := range g.members {
		if m.site == p.site {
			continue
		}
		source := pgReplConn(p, l.dir) + " application_name=" + m.site
		if err := l.pgCommand(m.site, "pg_basebackup", "-D", l.pgDataDir(m.site), "-d", source,
			"-X", "stream", "-c", "fast", "-R", "-N"); err != nil {
			return err
		}
		if err := l.pgConfigure(m, false); err != nil {
			return err
		}
	}
	return nil
}

// pgConfigure appends the lab's settings to a server's postgresql.conf:
// the common ones (a clone has them from its primary) and its own.
func (l *Lab) pgConfigure(m pgMember, common bool) error {
	var lines []string
	if common {
		lines = append(lines, pgConf...)
	}
	lines = append(lines,
		"listen_addresses = '"+m.host+"'",
		"port = "+m.port,
		"cluster_name = 'zdt-lab-"+m.site+"'",
		"log_directory = "+pgQuote(l.pgDir(m.site)),
	)
	data := l.pgDataDir(m.site)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n# zdt lab\n" + strings.Join(lines, "\n") + "\n")
	if err := errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("configure %s: %w", postgresOf(m.site), err)
	}
	if !common {
		return nil
	}
	hba := filepath.Join(data, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte(pgHBA), 0o600); err != nil {
		return err
	}
	return l.pg.user.own(hba)
}

// pgCreateReplUser creates zdt_repl on the primary, with what pg_rewind
// needs of its source.
func (l *Lab) pgCreateReplUser(p pgMember) error {
	pw, err := l.replicationPassword()
	if err != nil {
		return err
	}
	conn, err := l.PostgresConnString(p.site)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", postgresOf(p.site), err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	for _, q := range []string{
		"CREATE ROLE " + pgReplUser + " WITH LOGIN REPLICATION PASSWORD '" + pw + "'",
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO " + pgReplUser,
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO " + pgReplUser,
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO " + pgReplUser,
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO " + pgReplUser,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %s: %w", postgresOf(p.site), strings.SplitN(q, " PASSWORD", 2)[0], err)
		}
	}
	return nil
}

// pgStart starts the site's server with pg_ctl, which puts it in a session
// of its own, so it outlives a detached `zdt lab`, and waits until it
// accepts connections.
func (l *Lab) pgStart(site string) error {
	startLog := filepath.Join(l.pgDir(site), pgStartLogName)
	err := l.pgCommand(site, "pg_ctl", "start", "-D", l.pgDataDir(site), "-w", "-t", "60", "-l", startLog)
	if err != nil {
		var b strings.Builder
		for _, line := range append(tailLines(startLog, 5), tailLines(l.PostgresLogPath(site), logTailLines)...) {
			b.WriteString("\n    " + line)
		}
		return fmt.Errorf("start %s: %w; the end of its logs:%s", postgresOf(site), err, b.String())
	}
	return nil
}

// pgCommand runs one of the PostgreSQL programs as the servers' user in
// the site's PostgreSQL directory.
func (l *Lab) pgCommand(site, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), pgCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(l.pg.binDir, name), args...)
	cmd.Dir = l.pgDir(site)
	// The servers and tools take their connection settings from the lab's
	// conninfos alone: a PGPASSWORD exported in the shell (the lab prints
	// how to reach a server with one) would beat the passfile of zdt_repl,
	// in pg_basebackup and in the WAL receivers of the servers started here.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PG") })
	cmd.WaitDelay = 5 * time.Second
	if u := l.pg.user; u.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
		cmd.Env = append(cmd.Env, "HOME="+u.home, "USER="+u.name, "LOGNAME="+u.name)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// In network namespaces the server is born in its site's, from a
	// thread there.
	err := l.inNS(postgresOf(site), cmd.Start)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// pgAdminConn is the conninfo of the controllers' sessions on a server;
// the password is in the config's password_file.
func pgAdminConn(m pgMember) string {
	return fmt.Sprintf("host=%s port=%s user=%s dbname=postgres", m.host, m.port, pgAdminUser)
}

// pgReplConn is the conninfo the standbys stream from a server with, and
// pg_rewind reads it with; the password is in the password file.
func pgReplConn(m pgMember, labDir string) string {
	return fmt.Sprintf("host=%s port=%s user=%s passfile=%s", m.host, m.port, pgReplUser, conninfoQuote(pgPassFile(labDir)))
}

// conninfoQuote quotes a conninfo value when it needs it.
func conninfoQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// pgQuote quotes a postgresql.conf string.
func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// postmasterPID reads the pid of the data directory's postmaster.
func postmasterPID(dataDir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("postmaster.pid of %s: not a pid: %q", dataDir, first)
	}
	return pid, nil
}

// isPostgres reports whether pid is a live postmaster of the data
// directory: `postgres -D DATA`, as pg_ctl starts it.
func isPostgres(pid int, dataDir string) bool {
	args := cmdline(pid)
	return len(args) >= 2 && filepath.Base(args[0]) == "postgres" &&
		filepath.Clean(flagValue(args[1:], "-D")) == filepath.Clean(dataDir)
}

// waitReaped waits, up to d, until pid is gone from /proc: a zombie is
// reaped. The lab is not a postmaster's parent, init is.
func waitReaped(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(pollInterval) // nothing to wait on for another's child
	}
}

// PostgresOff says why Create left the topology's replication group out
// (PostgreSQL is not installed, or its user cannot reach the lab), nil if
// it did not.
func (l *Lab) PostgresOff() error { return l.noPostgres }

// PostgresPrimarySite is the site of the group's first primary: the first
// site of the service that uses the group. "" if the lab has no group.
func (l *Lab) PostgresPrimarySite() string {
	if l.pg == nil {
		return ""
	}
	return l.pg.primary
}

// PostgresAddr is where the site's PostgreSQL server listens.
func (l *Lab) PostgresAddr(site string) (host, port string) {
	m, _ := l.pg.memberOK(site)
	return m.host, m.port
}
