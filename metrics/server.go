package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts of the Server's http.Server. Scrapes are served from memory, so generous bounds only guard against
// slow or stuck clients.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

const index = `leadthrough
/metrics  Prometheus metrics
/healthz  200 "ok" when healthy, 503 with the reason otherwise
`

// Server serves /metrics, /healthz and, at /, a plain-text index of them or the handler given to SetIndex.
type Server struct {
	addr string
	srv  *http.Server
	log  *slog.Logger

	mu    sync.Mutex
	ln    net.Listener
	index http.Handler // serves "/" once set; nil: the plain-text index
}

// NewServer creates a Server for addr (host:port; ":0" picks a free port, see Addr). /metrics serves g with
// promhttp, continuing past collection errors so one bad collector does not blank the scrape. /healthz answers 200
// "ok" when health returns nil and 503 with its error text otherwise; a nil health is always healthy. A nil log
// means slog.Default().
func NewServer(addr string, g prometheus.Gatherer, health func() error, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	if health == nil {
		health = func() error { return nil }
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err.Error())
			return
		}
		io.WriteString(w, "ok\n")
	})
	s := &Server{addr: addr, log: log}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		h := s.index
		s.mu.Unlock()
		if h != nil {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, index)
	})
	s.srv = &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// SetIndex serves h at / (exactly: other paths stay 404) instead of the plain-text index, from the next request on;
// serve's report page is one. It may be called before or after Start.
func (s *Server) SetIndex(h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = h
}

// Start listens on the address, returning any error (such as a port in use) at once, then serves in a goroutine
// until Shutdown. A serving error after that is logged.
func (s *Server) Start() error {
	ln, err := s.listen()
	if err != nil {
		return err
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// ListenAndServe listens on the address and serves until Shutdown, when it returns nil.
func (s *Server) ListenAndServe() error {
	ln, err := s.listen()
	if err != nil {
		return err
	}
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err)
	}
	return nil
}

func (s *Server) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", s.addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
	return ln, nil
}

// Addr is the address listened on (with the actual port when the configured one was 0), or the configured address
// before Start or ListenAndServe.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// Shutdown stops accepting connections and waits for active requests until ctx is done (http.Server.Shutdown).
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down metrics server: %w", err)
	}
	return nil
}

// promLogger sends promhttp's collection and encoding errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn("serving /metrics", "err", fmt.Sprint(v...)) }
