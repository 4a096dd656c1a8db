package salesforce_test

import (
	"reflect"
	"testing"

	"github.com/leadthrough/leadthrough/crm/salesforce"
	"github.com/leadthrough/leadthrough/event"
)

// FuzzDecode, seeded with every testdata input: no input panics, every error carries a Reason, every event passes
// event.Validate and re-encodes, ids are unique within a message, and decoding is deterministic.
func FuzzDecode(f *testing.F) {
	for _, in := range inputs(f) {
		f.Add(in)
	}
	f.Add([]byte(`{"data":{"payload":null}}`))
	f.Add([]byte(`{"ChangeEventHeader":{"entityName":"User","changeType":"CREATE","recordIds":["005A","005B"],` +
		`"transactionKey":"t","sequenceNumber":1e0,"commitTimestamp":1.652977933e12},"Name":{"FirstName":"A"},"ManagerId":"005B"}`))
	f.Add([]byte("\xff"))
	dec := salesforce.New(salesforce.Config{Source: "salesforce/fuzz"})
	f.Fuzz(func(t *testing.T, raw []byte) {
		evs, err := dec.Decode(raw)
		if err != nil {
			if event.ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			if evs != nil {
				t.Fatalf("events along with an error: %v", evs)
			}
			return
		}
		ids := map[string]bool{}
		for _, ev := range evs {
			if err := event.Validate(ev); err != nil {
				t.Fatalf("event breaks the contract: %v\n%+v", err, ev)
			}
			if _, err := event.Encode(ev); err != nil {
				t.Fatalf("event does not encode: %v", err)
			}
			if ids[ev.ID] {
				t.Fatalf("id %q twice in one message", ev.ID)
			}
			ids[ev.ID] = true
		}
		again, err := dec.Decode(raw)
		if err != nil || !reflect.DeepEqual(again, evs) {
			t.Fatalf("second decode differs: %v, %v", again, err)
		}
	})
}
