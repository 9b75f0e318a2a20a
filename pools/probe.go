package pools

// What is known of a server (Server.state): whether it serves comes only
// from a connection to it or a check of it.
const (
	stateUnknown int32 = iota // neither dialled nor checked yet
	stateUp                   // the last connection or check succeeded
	stateDown                 // the last one failed, or the server refused a request
)

// Probe checks the server in the background, unless a check Probe started
// is still running: it opens a fresh connection to the server's address
// with the connection handshake (Options.Handshake and Verify) and sends
// the health check request (Options.Ping). The server is up (Up) if both
// succeed, else down (Down). A check is not traffic: neither its
// connection nor its failure is counted in Stats or towards ejection. It
// returns a channel closed once the check has ended (at once when the
// server is closed).
func (s *Server) Probe() <-chan struct{} {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if s.probing != nil {
		return s.probing
	}
	done := make(chan struct{})
	if s.closed.Load() {
		close(done)
		return done
	}
	s.probing = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.probe()
		s.probeMu.Lock()
		s.probing = nil
		s.probeMu.Unlock()
		close(done)
	}()
	return done
}

// probe is Probe's check.
func (s *Server) probe() {
	timeout := s.timeout()
	nc, err := s.open(s.Addr(), timeout, false)
	if err == nil {
		if s.opt.Ping != nil {
			err = s.handshake(nc, timeout, [][]byte{s.opt.Ping}, 0, nil)
		}
		nc.Close()
	}
	switch {
	case s.closed.Load():
	case err != nil:
		if s.state.Swap(stateDown) != stateDown {
			s.log.Warn("server check failed: down until a check succeeds", "err", err)
		}
	default:
		if s.state.Swap(stateUp) != stateUp {
			s.log.Info("server check succeeded: up")
		}
	}
}

// refused marks the server down: it refused a request (Options.Refuses).
func (s *Server) refused(reply []byte) {
	if s.state.Swap(stateDown) != stateDown {
		s.log.Warn("server refuses requests: down until a check succeeds", "reply", trimReply(reply))
	}
}
