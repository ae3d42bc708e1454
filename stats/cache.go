package stats

// Origin describes one origin's part of the external cache.
type Origin struct {
	Origin    string `json:"origin"`
	Flows     int    `json:"flows"`
	Epoch     uint64 `json:"epoch,string"` // a string: 64 bits do not fit a JSON tool's double
	Synced    bool   `json:"synced"`
	Applied   uint64 `json:"applied"`      // updates and deletes applied
	Stale     uint64 `json:"stale"`        // updates rejected as older than what is held
	Full      uint64 `json:"dropped_full"` // the origin's flows dropped because the cache was full (MaxFlows)
	Expired   uint64 `json:"expired"`      // flows aged out
	Snapshots uint64 `json:"snapshots"`
	// VouchedAge is the age of the owner's last word, in seconds.
	VouchedAge float64 `json:"vouched_age_seconds"`
}
