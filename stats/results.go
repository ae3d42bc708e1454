package stats

// CommitResult is the outcome of a commit.
type CommitResult struct {
	Created  int `json:"created"`
	Replaced int `json:"replaced"` // existed already: replaced by the replica
	Failed   int `json:"failed"`
	// Skipped are peers' flows this node refuses (its filter, loopback
	// and its own addresses): not written, and not failures.
	Skipped int `json:"skipped"`
	// Expectations created on the committed masters, found there
	// already (the kernel cannot update one), and failed.
	Expectations         int      `json:"expectations,omitempty"`
	ExpectationsExisting int      `json:"expectations_existing,omitempty"`
	ExpectationsFailed   int      `json:"expectations_failed,omitempty"`
	ExpectationsSkipped  int      `json:"expectations_skipped,omitempty"` // their master was skipped
	Seconds              float64  `json:"seconds"`
	Errors               []string `json:"errors,omitempty"` // the first few failures, one line each

	// KeptLocal counts flows whose replica was not written because a live
	// local entry stays: the kernel refused the replica (the local entry
	// was put back), or the replica's tuples belong to another local
	// connection. Remaining counts the flows not written (failed and kept
	// local): they stay in the external cache, and the next commit
	// retries them.
	KeptLocal int `json:"kept_local,omitempty"`
	Remaining int `json:"remaining,omitempty"`
}

// NotifyStep is one step of a transition.
type NotifyStep struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail,omitempty"`
}

// NotifyResult is the outcome of a keepalived transition.
type NotifyResult struct {
	State  string        `json:"state"`
	Steps  []NotifyStep  `json:"steps"`
	Commit *CommitResult `json:"commit,omitempty"`

	// Remaining counts the flows a master transition could not write:
	// they stay in the external cache for `ctsync commit` to retry.
	Remaining int `json:"remaining,omitempty"`
}
