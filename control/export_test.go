package control

// SetAllowed replaces the peer uid check; call it before Serve.
func SetAllowed(s *Server, allowed func(uid uint32) bool) { s.allowed = allowed }
