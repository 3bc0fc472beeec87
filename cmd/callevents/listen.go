package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/callevents/callevents/store"
)

// maxHeaderBytes caps request headers (net/http's default is 1 MiB); a
// SOAP or REST caller needs a few hundred bytes.
const maxHeaderBytes = 64 << 10

// newHTTPServer returns a server for h with bounded reads and writes, so a
// slow or stalled client cannot hold a connection (and its goroutine)
// forever.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// config loads --tls-cert and --tls-key, or returns nil when neither is
// set. The files are read at start, so a wrong path or a key that does not
// match fails the start rather than the first handshake.
func (f tlsFlags) config() (*tls.Config, error) {
	switch {
	case f.Cert == "" && f.Key == "":
		return nil, nil
	case f.Cert == "" || f.Key == "":
		return nil, errors.New("--tls-cert and --tls-key go together: set both, or neither for plain HTTP")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// listen opens addr, with TLS when tlsConf is set.
func listen(addr string, tlsConf *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	return ln, nil
}

// opsRoutes adds what every process serves for its operator: GET /metrics,
// /healthz (the process runs) and /readyz (its database answers).
func opsRoutes(mux *http.ServeMux, db *store.DB, m *metrics, log *slog.Logger) {
	mux.Handle("GET /metrics", m.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := db.Ping(ctx); err != nil {
			log.Warn("callevents: not ready", "error", err.Error())
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "database unavailable\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
}

// startOpsServer serves opsRoutes on --metrics-listen for the processes
// without an API (dispatch, ami); it returns a stop function, which is a
// no-op when the flag is unset.
func startOpsServer(f metricsFlags, db *store.DB, m *metrics, log *slog.Logger) (func(context.Context), error) {
	if f.Listen == "" {
		return func(context.Context) {}, nil
	}
	tlsConf, err := f.TLS.config()
	if err != nil {
		return nil, err
	}
	ln, err := listen(f.Listen, tlsConf)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	opsRoutes(mux, db, m, log)
	srv := newHTTPServer(mux, log)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("callevents: metrics listener stopped", "error", err.Error())
		}
	}()
	log.Info("callevents: metrics listening", "addr", ln.Addr().String(), "tls", tlsConf != nil)
	return func(ctx context.Context) { srv.Shutdown(ctx) }, nil
}
