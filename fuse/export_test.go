package fuse

// Hooks for the external tests (package fuse_test); compiled only into tests.

// SetProbeForTest makes s run probe in place of the real poll probe once
// INIT is answered, so sessions on fusetest.Conn can simulate it. Call it
// before INIT.
func SetProbeForTest(s *Server, probe func() error) { s.probe = probe }

// ProbePolled reports whether the kernel sent POLL on ProbeNodeID.
func ProbePolled(s *Server) bool { return s.probePolled.Load() }
