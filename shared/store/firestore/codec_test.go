package firestore

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestDocumentIsUnchanged: the document data of a record with every field
// set (its map form, keys sorted, values as Firestore holds them: times to
// the microsecond, bytes, nulls) is the golden file's, written from the
// encoding before the record's fields were grouped (issue 25, item 4); and
// it decodes back to the record.
func TestDocumentIsUnchanged(t *testing.T) {
	d := storetest.Populated()
	data, err := encodeDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "deployment.document.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the document differs from %s (the stored form changed):\n%s", path, cmp.Diff(string(want), string(got)))
	}
	back, err := decodeDeployment(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, back, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("document → deployment (-in +out):\n%s", diff)
	}
}

// TestEncodeRefusesADuplicateName: an embedded part's field named as an
// outer one would make one Firestore field of two (JSON keeps the
// shallower); the codec refuses it instead of storing another document.
func TestEncodeRefusesADuplicateName(t *testing.T) {
	type part struct {
		Status string `json:"status"`
	}
	type record struct {
		part
		Status string `json:"status"`
	}
	if _, err := encodeStruct(reflect.ValueOf(record{part{"a"}, "b"})); err == nil {
		t.Fatal("two fields named status encoded without an error")
	}
	type fine struct {
		part
		Other string `json:"other"`
	}
	m, err := encodeStruct(reflect.ValueOf(fine{part{"a"}, "b"}))
	if err != nil || m["status"] != "a" || m["other"] != "b" {
		t.Fatalf("an embedded part with names of its own: %v, %v", m, err)
	}
}
