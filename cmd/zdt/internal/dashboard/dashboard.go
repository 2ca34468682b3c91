// Package dashboard serves the controllers' web dashboard: one page, with
// its script and style embedded in the binary (no build step, no CDN, no
// external font), that a NOC keeps on a wall.
//
// The assets hold no data and need no identity. The page reads everything
// it shows from the API (/api/v1) with the caller's own identity, a client
// certificate or a bearer token, so it may do exactly what that identity
// may: a viewer sees, an operator also starts switchovers and approves or
// aborts ops.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Path is where the dashboard lives.
const Path = "/ui/"

// CSP is the Content-Security-Policy of every asset: the page's script and
// style from the dashboard itself, its data from the API on the same
// origin, nothing from anywhere else, no inline script or style.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// contentType is an asset's type by its extension (not by the system's
// mime.types, which differ from machine to machine).
func contentType(ext string) (string, bool) {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8", true
	case ".js":
		return "text/javascript; charset=utf-8", true
	case ".css":
		return "text/css; charset=utf-8", true
	}
	return "", false
}

// asset is one embedded file, ready to serve.
type asset struct {
	name, contentType, etag string
	body                    []byte
}

// Register serves the dashboard on mux: GET /ui/ and its assets, and GET /
// redirected there.
func Register(mux *http.ServeMux) {
	assets, err := load()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path, http.StatusFound)
	})
	mux.HandleFunc("GET "+Path, func(w http.ResponseWriter, r *http.Request) {
		if err != nil { // the files are compiled in: only a broken build gets here
			http.Error(w, "the dashboard's assets: "+err.Error(), http.StatusInternalServerError)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Path)
		if name == "" {
			name = "index.html"
		}
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serve(w, r, a)
	})
}

// load reads the embedded files.
func load() (map[string]asset, error) {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("the embedded assets: %w", err)
	}
	entries, err := fs.ReadDir(sub, ".")
	if err != nil {
		return nil, fmt.Errorf("list the embedded assets: %w", err)
	}
	assets := map[string]asset{}
	for _, e := range entries {
		body, err := fs.ReadFile(sub, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read asset %s: %w", e.Name(), err)
		}
		ct, ok := contentType(path.Ext(e.Name()))
		if !ok {
			return nil, fmt.Errorf("asset %s: no content type for its extension", e.Name())
		}
		sum := sha256.Sum256(body)
		assets[e.Name()] = asset{name: e.Name(), contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, body: body}
	}
	return assets, nil
}

// serve answers one asset. The browser revalidates it on every load (no-cache
// with an ETag of its content), so a new controller's page shows at once and
// an unchanged one costs a 304.
func serve(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
