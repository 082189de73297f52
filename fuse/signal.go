package fuse

import (
	"os"
	"os/signal"
	"syscall"
)

// UnmountOnSignal unmounts the session when one of sigs arrives (default
// SIGINT and SIGTERM), so Serve returns and the program can exit cleanly.
// A busy mount is detached lazily. The returned stop function stops
// listening.
func (s *Server) UnmountOnSignal(sigs ...os.Signal) (stop func()) {
	if len(sigs) == 0 {
		sigs = []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	quit := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			s.log.Info("fuse: signal received; unmounting", "signal", sig.String(), "mountpoint", s.mountpoint)
			if err := s.Unmount(); err != nil {
				s.log.Error("fuse: unmount on signal", "err", err)
			}
		case <-quit:
		case <-s.done:
		}
		signal.Stop(ch)
	}()
	return func() {
		select {
		case <-quit:
		default:
			close(quit)
		}
	}
}
