package deployment_test

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

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got (compact JSON) byte for byte with the compact form of
// testdata/name (kept indented for reading), or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		var b bytes.Buffer
		if err := json.Indent(&b, got, "", "  "); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b.Bytes(), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(compact.Bytes(), got) {
		t.Errorf("the encoding differs from %s (the stored or served form changed):\n got %s\nwant %s", path, got, compact.Bytes())
	}
}

// TestStoredFormIsUnchanged: a record with every field set encodes (bolt
// stores this JSON) byte for byte as the golden file, written from the
// encoding before the record's fields were grouped (issue 25, item 4), and
// decodes back to the same record.
func TestStoredFormIsUnchanged(t *testing.T) {
	d := storetest.Populated()
	got, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "deployment.json", got)
	var back deployment.Deployment
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, &back); diff != "" {
		t.Errorf("encode → decode (-in +out):\n%s", diff)
	}
}

// TestServedFormIsUnchanged: the owner's view of that record (GET, list,
// webhook payloads) encodes byte for byte as its golden file.
func TestServedFormIsUnchanged(t *testing.T) {
	d := storetest.Populated()
	got, err := json.Marshal(d.PublicAt(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), true))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "public.json", got)
}

// TestCloneIsDeep walks every field of a fully populated record (every
// slice, map and pointer set), changes everything the clone can reach in
// place, and checks that the original did not change: a field that Clone
// copies shallowly (a new slice, a pointer) fails here.
func TestCloneIsDeep(t *testing.T) {
	d, want := storetest.Populated(), storetest.Populated()
	c := d.Clone()
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("the clone differs from the original (-original +clone):\n%s", diff)
	}
	if n := scribble(reflect.ValueOf(c).Elem()); n < 50 {
		t.Fatalf("changed %d values of the clone: the walk misses fields", n)
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("changing the clone changed the original: Clone shares memory (-before +after):\n%s", diff)
	}
}

// scribble changes every value reachable from v in place (through slices,
// maps and pointers, never replacing them) and returns how many it changed.
func scribble(v reflect.Value) int {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Hour)))
		return 1
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "!")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Slice:
		n := 0
		for i := range v.Len() {
			n += scribble(v.Index(i))
		}
		return n
	case reflect.Map:
		n := 0
		for it := v.MapRange(); it.Next(); {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			n += scribble(e)
			v.SetMapIndex(it.Key(), e)
		}
		return n
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return scribble(v.Elem())
	case reflect.Struct:
		n := 0
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				n += scribble(v.Field(i))
			}
		}
		return n
	default:
		panic("scribble: cannot change a " + v.Kind().String())
	}
	return 1
}
