package postgres

import (
	"errors"
	"fmt"
	"strings"
)

// connInfo is a libpq connection string in keyword=value form, keeping its
// keywords in order. It is how the driver edits a primary's
// ReplicationConnInfo before a standby uses it (application_name, dbname).
type connInfo []connParam

type connParam struct{ key, value string }

// parseConnInfo parses libpq's keyword/value form (`host=a port=5432
// password='it”s'`): values are bare words or single-quoted, and a
// backslash escapes the next character in both. URIs (postgresql://) are
// refused: the driver rewrites these strings and keeps to one form.
func parseConnInfo(s string) (connInfo, error) {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		return nil, errors.New("connection string is a URI; write it in keyword=value form (host=... port=... user=...)")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errors.New("connection string contains a NUL byte")
	}
	var ci connInfo
	i := 0
	skipSpace := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		skipSpace()
		if i == len(s) {
			return ci, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[start:i]
		skipSpace()
		if i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("connection string: missing \"=\" after %q", key)
		}
		if key == "" {
			return nil, errors.New("connection string: \"=\" without a keyword before it")
		}
		i++
		skipSpace()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				switch {
				case c == '\\' && i < len(s):
					v.WriteByte(s[i])
					i++
				case c == '\'':
					closed = true
				default:
					v.WriteByte(c)
				}
				if closed {
					break
				}
			}
			if !closed {
				return nil, fmt.Errorf("connection string: unterminated quoted value of %q", key)
			}
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' {
					// libpq drops a backslash that ends the string.
					if i++; i == len(s) {
						break
					}
				}
				v.WriteByte(s[i])
				i++
			}
		}
		ci = ci.with(key, v.String())
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// get returns the value of key, "" when absent.
func (ci connInfo) get(key string) string {
	for _, p := range ci {
		if p.key == key {
			return p.value
		}
	}
	return ""
}

// with returns ci with key set to value, replacing an earlier value in
// place (libpq keeps the last one) or appending it.
func (ci connInfo) with(key, value string) connInfo {
	out := make(connInfo, 0, len(ci)+1)
	found := false
	for _, p := range ci {
		if p.key == key {
			if found {
				continue
			}
			p.value, found = value, true
		}
		out = append(out, p)
	}
	if !found {
		out = append(out, connParam{key, value})
	}
	return out
}

// String prints ci in keyword/value form, quoting every value so that
// parseConnInfo(ci.String()) gives ci back.
func (ci connInfo) String() string {
	var b strings.Builder
	for n, p := range ci {
		if n > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.key)
		b.WriteString("='")
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p.value))
		b.WriteByte('\'')
	}
	return b.String()
}

// sameSender says whether two replication connection strings reach the
// same server as the same user and name the standby the same.
func sameSender(a, b connInfo) bool {
	for _, k := range []string{"host", "hostaddr", "port", "user", "application_name"} {
		if a.get(k) != b.get(k) {
			return false
		}
	}
	return true
}

// quoteConfigValue quotes s for postgresql.conf and postgresql.auto.conf,
// as ALTER SYSTEM writes them: in single quotes, with ' doubled and \
// escaped.
func quoteConfigValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}

// quoteIdent quotes s as an SQL identifier (synchronous_standby_names
// takes standby names as identifiers).
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// without returns ci without key.
func (ci connInfo) without(key string) connInfo {
	out := make(connInfo, 0, len(ci))
	for _, p := range ci {
		if p.key != key {
			out = append(out, p)
		}
	}
	return out
}

// withoutEnvironment returns ci with explicit values, libpq's defaults, for
// the settings it leaves out that libpq and pgconn would otherwise take
// from the controller's environment: password (an empty one means "look in
// the passfile", which PGPASSWORD would beat), port and sslmode. The
// controller then reaches a member as that member's own tools and WAL
// receiver do, which run with no PG* environment (see command). A
// PGPASSWORD in the shell that started the controller, say the superuser's
// from the lab's hint, must not become the replication user's.
func withoutEnvironment(ci connInfo) connInfo {
	for _, d := range []connParam{{"password", ""}, {"port", "5432"}, {"sslmode", "prefer"}} {
		if !ci.has(d.key) {
			ci = ci.with(d.key, d.value)
		}
	}
	return ci
}

// has says whether ci sets key, even to "".
func (ci connInfo) has(key string) bool {
	for _, p := range ci {
		if p.key == key {
			return true
		}
	}
	return false
}
