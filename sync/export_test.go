package sync

// Epoch returns this node's incarnation number (tests only: production
// code reads n.epoch).
func (n *Node) Epoch() uint64 { return n.epoch }
