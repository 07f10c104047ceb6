package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestConnReadsEveryAnswerForm: the load generator's connection reads
// answers with a Content-Length, chunked answers, empty ones and ones
// that close the connection, and keeps the connection across requests.
func TestConnReadsEveryAnswerForm(t *testing.T) {
	var bodies []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /small", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		w.Write([]byte(`{"ok":true}`))
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100_000))) // over the server's buffer: chunked
	})
	mux.HandleFunc("GET /empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusNotFound) })
	mux.HandleFunc("GET /bye", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	c := newConn(strings.TrimPrefix(ts.URL, "http://"), nil, "")
	defer c.close()

	steps := []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/small", `{"a":1}`, 200},
		{"GET", "/big", "", 200},
		{"POST", "/small", `{"b":2}`, 200},
		{"GET", "/empty", "", 204},
		{"GET", "/missing", "", 404},
		{"GET", "/bye", "", 200},
		{"POST", "/small", `{"c":3}`, 200}, // after a redial
	}
	for _, s := range steps {
		var body []byte
		if s.body != "" {
			body = []byte(s.body)
		}
		status, err := c.do(s.method, s.path, body)
		if err != nil || status != s.want {
			t.Fatalf("%s %s: %d %v, want %d", s.method, s.path, status, err, s.want)
		}
	}
	if got := strings.Join(bodies, ""); got != `{"a":1}{"b":2}{"c":3}` {
		t.Fatalf("server read bodies %q", got)
	}
}

func TestConnFailsOnAClosedServer(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(ts.URL, "http://")
	ts.Close()
	if _, err := newConn(addr, nil, "").do("GET", "/", nil); err == nil {
		t.Fatal("no error from a closed server")
	}
}
