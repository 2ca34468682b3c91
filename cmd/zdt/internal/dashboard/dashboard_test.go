package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serveOne(t *testing.T, mux *http.ServeMux, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Result()
}

func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	Register(mux)
	return mux
}

// TestAssets checks that each asset is served with its type, the CSP and
// the caching headers, and that a request with its ETag gets a 304.
func TestAssets(t *testing.T) {
	mux := newMux()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/ui/", "text/html; charset=utf-8", `<script src="app.js"`},
		{"/ui/index.html", "text/html; charset=utf-8", `<link rel="stylesheet" href="style.css">`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "/api/v1"},
		{"/ui/style.css", "text/css; charset=utf-8", ".stale"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp := serveOne(t, mux, "GET", tc.path, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %s", tc.path, resp.StatusCode, body)
			}
			h := resp.Header
			for k, want := range map[string]string{
				"Content-Type":            tc.contentType,
				"Content-Security-Policy": CSP,
				"Cache-Control":           "no-cache",
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("GET %s: %s is %q; want %q", tc.path, k, got, want)
				}
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("GET %s: the body lacks %q", tc.path, tc.contains)
			}
			etag := h.Get("ETag")
			if etag == "" {
				t.Fatalf("GET %s: no ETag", tc.path)
			}
			again := serveOne(t, mux, "GET", tc.path, http.Header{"If-None-Match": {etag}})
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("GET %s with If-None-Match %s: %d; want 304", tc.path, etag, again.StatusCode)
			}
		})
	}
}

// TestCSPForbidsOtherSources checks that the policy allows nothing but the
// dashboard's own origin (and data: images), and no inline script.
func TestCSPForbidsOtherSources(t *testing.T) {
	for _, directive := range strings.Split(CSP, ";") {
		f := strings.Fields(directive)
		if len(f) == 0 {
			continue
		}
		for _, src := range f[1:] {
			switch src {
			case "'self'", "'none'", "data:":
			default:
				t.Errorf("CSP directive %s allows %s; want only 'self', 'none' or data:", f[0], src)
			}
		}
	}
	if !strings.Contains(CSP, "default-src 'none'") {
		t.Errorf("CSP %q does not default to none", CSP)
	}
}

// TestNoExternalReferences checks that no asset names a URL: the dashboard
// must work without the internet.
func TestNoExternalReferences(t *testing.T) {
	assets, err := load()
	if err != nil {
		t.Fatal(err)
	}
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for name, a := range assets {
		for _, line := range strings.Split(string(a.body), "\n") {
			if strings.Contains(line, "http://") || strings.Contains(line, "https://") || url.MatchString(line) {
				t.Errorf("%s refers to another origin: %s", name, strings.TrimSpace(line))
			}
		}
	}
	for _, want := range []string{"index.html", "app.js", "style.css"} {
		if _, ok := assets[want]; !ok {
			t.Errorf("asset %s is not embedded", want)
		}
	}
}

func TestRedirectAndNotFound(t *testing.T) {
	mux := newMux()
	for _, tc := range []struct {
		method, path string
		status       int
		location     string
	}{
		{"GET", "/", http.StatusFound, "/ui/"},
		{"GET", "/ui", http.StatusTemporaryRedirect, "/ui/"},
		{"GET", "/ui/nope.js", http.StatusNotFound, ""},
		{"GET", "/elsewhere", http.StatusNotFound, ""},
		{"POST", "/ui/", http.StatusMethodNotAllowed, ""},
		{"HEAD", "/ui/app.js", http.StatusOK, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := serveOne(t, mux, tc.method, tc.path, nil)
			if resp.StatusCode != tc.status {
				t.Errorf("%s %s: %d; want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Errorf("%s %s: Location %q; want %q", tc.method, tc.path, got, tc.location)
			}
		})
	}
}
