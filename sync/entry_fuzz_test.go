package sync

import (
	"reflect"
	"testing"

	"github.com/ctsync/ctsync/cache"
)

// FuzzEntryRoundTrip: every entry the hand-written decoder (msgp.go,
// parseEntry) accepts encodes back to bytes that decode to the same entry.
// FuzzDecodeMessage covers the other messages; this one checks that what a
// peer sends is read as exactly what the encoder would have written.
func FuzzEntryRoundTrip(f *testing.F) {
	w := newWriter()
	in := wireEntries()
	w.startEntries(3)
	for i := range in {
		w.entry(&in[i])
	}
	f.Add(append([]byte(nil), w.endEntries(len(in))...))
	for i := range in {
		w.startEntries(1)
		w.entry(&in[i])
		f.Add(append([]byte(nil), w.endEntries(1)...))
	}
	for _, b := range hostileSeeds(entryWith) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := newReader()
		if typ, err := rd.open(b); err != nil || typ != msgEntries {
			return
		}
		var got []cache.Entry
		var epochs []uint64
		if err := rd.entries(func(ep uint64, e *cache.Entry) error {
			c := *e
			if e.Flow.Master != nil {
				m := *e.Flow.Master
				c.Flow.Master = &m
			}
			got, epochs = append(got, c), append(epochs, ep)
			return nil
		}); err != nil {
			return
		}
		if len(got) == 0 {
			return
		}
		w := newWriter()
		w.startEntries(epochs[0])
		for i := range got {
			w.entry(&got[i])
		}
		again := newReader()
		if _, err := again.open(w.endEntries(len(got))); err != nil {
			t.Fatal(err)
		}
		i := 0
		if err := again.entries(func(ep uint64, e *cache.Entry) error {
			if ep != epochs[i] || !reflect.DeepEqual(*e, got[i]) {
				t.Fatalf("entry %d decodes as\n%+v\nre-encoded, it decodes as\n%+v", i, got[i], *e)
			}
			i++
			return nil
		}); err != nil {
			t.Fatalf("re-encoded entries do not decode: %v", err)
		}
	})
}
