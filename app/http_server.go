package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// httpServer is the API server of one replica, run from the fx lifecycle:
// start binds the address (so a taken port fails the start) and serves on
// a goroutine that stop shuts down gracefully within its timeout and waits
// for.
type httpServer struct {
	srv     *http.Server
	addr    string
	timeout time.Duration
	log     logr.Logger

	bound atomic.Pointer[string] // read by the membership recorder
	done  chan struct{}
}

func newHTTPServer(addr string, h http.Handler, shutdownTimeout time.Duration, log logr.Logger) *httpServer {
	return &httpServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
		},
		addr: addr, timeout: shutdownTimeout, log: log,
	}
}

func (s *httpServer) start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", s.addr, err)
	}
	bound := ln.Addr().String()
	s.bound.Store(&bound)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(err, "http server stopped serving", "address", bound)
		}
	}()
	s.log.Info("serving HTTP", "url", "http://"+bound)
	return nil
}

// stop shuts the server down: it stops accepting, lets the requests in
// flight finish within the timeout, then closes what is left.
func (s *httpServer) stop(ctx context.Context) error {
	if s.done == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
		err = fmt.Errorf("http: graceful shutdown: %w", err)
	}
	<-s.done
	return err
}

// Address is where the server listens once started.
func (s *httpServer) Address() string {
	if p := s.bound.Load(); p != nil {
		return *p
	}
	return ""
}
