// Package loadtest provides a loopback HTTP server for tests of the load
// generator: it counts the requests it gets and those that carry a given
// Authorization header.
package loadtest

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Server counts requests. It answers 500 on /bad and 200 on any other path.
type Server struct {
	*httptest.Server
	// Hits counts every request; Authed those whose Authorization header
	// is the one given to NewServer.
	Hits, Authed atomic.Int64
}

// NewServer starts a Server on loopback, closed when the test ends.
func NewServer(t testing.TB, authorization string) *Server {
	t.Helper()
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Hits.Add(1)
		if r.Header.Get("Authorization") == authorization {
			s.Authed.Add(1)
		}
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(s.Close)
	return s
}
