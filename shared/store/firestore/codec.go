package firestore

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// Documents are built from the records' own JSON tags, so the Firestore
// field names are the snake_case names bolt stores (and a field added to
// deployment.Deployment is stored without touching this package), but with
// Firestore types rather than JSON's:
//
//   - time.Time is a timestamp, rounded to the microsecond, in UTC; a zero
//     time in a field tagged omitzero or omitempty is null, and one in any
//     other field (created_at, status_changed_at, updated_at) is the
//     timestamp 0001-01-01, so that queries on those fields never miss it;
//   - byte slices (deployment.Sealed) are bytes;
//   - structs are maps, slices are arrays, other named types (Status,
//     Level) their underlying string, number or bool;
//   - an embedded struct without a JSON name (deployment.Endpoint in
//     deployment.Deployment) adds its fields to the outer map, as in JSON.
//
// Reading ignores fields the record does not know (a newer writer's).

// Field names used in queries (see INDEXES.md); TestQueryFields checks that
// the deployment's tags still give them.
const (
	fieldOwner           = "owner"
	fieldStatus          = "status"
	fieldStatusChangedAt = "status_changed_at"
	fieldCreatedAt       = "created_at"
)

var timeType = reflect.TypeFor[time.Time]()

// encodeDeployment returns d as document data.
func encodeDeployment(d *deployment.Deployment) (map[string]any, error) {
	return encodeStruct(reflect.ValueOf(d).Elem())
}

// decodeDeployment returns the deployment in data, sharing no memory with it.
func decodeDeployment(data map[string]any) (*deployment.Deployment, error) {
	d := new(deployment.Deployment)
	if err := decodeStruct(reflect.ValueOf(d).Elem(), data); err != nil {
		return nil, err
	}
	return d, nil
}

// EncodeDeployment returns d as the document data the store writes.
func EncodeDeployment(d *deployment.Deployment) (map[string]any, error) { return encodeDeployment(d) }

// DecodeDeployment reads a deployment from document data the way the store
// does: the data of a document the Firestore trigger delivers, once its
// values are converted to Go's (timestamps as time.Time, integers as int64,
// maps as map[string]any, arrays as []any, bytes as []byte).
func DecodeDeployment(data map[string]any) (*deployment.Deployment, error) {
	return decodeDeployment(data)
}

func encodeIdempotency(r *store.Idempotency) (map[string]any, error) {
	return encodeStruct(reflect.ValueOf(r).Elem())
}

func decodeIdempotency(data map[string]any) (*store.Idempotency, error) {
	r := new(store.Idempotency)
	if err := decodeStruct(reflect.ValueOf(r).Elem(), data); err != nil {
		return nil, err
	}
	return r, nil
}

// fieldTag is a struct field's JSON name and whether a zero value may be
// left out (omitzero or omitempty).
type fieldTag struct {
	name     string
	optional bool
}

// tagOf returns the field's tag; ok is false for a field to skip (unexported
// or tagged "-"). An exported field without a JSON name is an error.
func tagOf(f reflect.StructField) (fieldTag, bool, error) {
	if !f.IsExported() {
		return fieldTag{}, false, nil
	}
	tag, has := f.Tag.Lookup("json")
	if tag == "-" {
		return fieldTag{}, false, nil
	}
	name, opts, _ := strings.Cut(tag, ",")
	if !has || name == "" {
		return fieldTag{}, false, fmt.Errorf("field %s has no json name", f.Name)
	}
	var optional bool
	for o := range strings.SplitSeq(opts, ",") {
		optional = optional || o == "omitzero" || o == "omitempty"
	}
	return fieldTag{name: name, optional: optional}, true, nil
}

// embedded reports whether f is a struct embedded without a JSON name,
// whose fields are the outer struct's.
func embedded(f reflect.StructField) bool {
	return f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == ""
}

func encodeStruct(v reflect.Value) (map[string]any, error) {
	m := make(map[string]any, v.NumField())
	if err := encodeFields(v, m); err != nil {
		return nil, err
	}
	return m, nil
}

// encodeFields adds v's fields to m, an embedded struct's among them.
func encodeFields(v reflect.Value, m map[string]any) error {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if embedded(f) {
			if err := encodeFields(v.Field(i), m); err != nil {
				return err
			}
			continue
		}
		tag, ok, err := tagOf(f)
		if err != nil {
			return fmt.Errorf("%s: %w", v.Type(), err)
		}
		if !ok {
			continue
		}
		// JSON lets the shallower of two fields of one name win; one map
		// cannot: a name used twice (an embedded part's field named as an
		// outer one) would store another document than the JSON form.
		if _, dup := m[tag.name]; dup {
			return fmt.Errorf("%s: two fields are named %q (an embedded struct's and another)", v.Type(), tag.name)
		}
		fv := v.Field(i)
		if fv.Type() == timeType && tag.optional && fv.Interface().(time.Time).IsZero() {
			m[tag.name] = nil
			continue
		}
		x, err := encodeValue(fv)
		if err != nil {
			return fmt.Errorf("%s: %w", tag.name, err)
		}
		m[tag.name] = x
	}
	return nil
}

func encodeValue(v reflect.Value) (any, error) {
	if v.Type() == timeType {
		return v.Interface().(time.Time).UTC().Truncate(time.Microsecond), nil
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Uint() > math.MaxInt64 {
			return nil, fmt.Errorf("%d does not fit a Firestore integer", v.Uint())
		}
		return int64(v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.Slice:
		if v.IsNil() {
			return nil, nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return append([]byte{}, v.Bytes()...), nil
		}
		out := make([]any, v.Len())
		for i := range v.Len() {
			x, err := encodeValue(v.Index(i))
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = x
		}
		return out, nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key type %s is not a string", v.Type().Key())
		}
		if v.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			x, err := encodeValue(it.Value())
			if err != nil {
				return nil, fmt.Errorf("[%q]: %w", it.Key().String(), err)
			}
			out[it.Key().String()] = x
		}
		return out, nil
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return encodeValue(v.Elem())
	case reflect.Struct:
		return encodeStruct(v)
	}
	return nil, fmt.Errorf("cannot store a %s", v.Type())
}

func decodeStruct(v reflect.Value, data map[string]any) error {
	for i := range v.NumField() {
		if embedded(v.Type().Field(i)) {
			if err := decodeStruct(v.Field(i), data); err != nil {
				return err
			}
			continue
		}
		tag, ok, err := tagOf(v.Type().Field(i))
		if err != nil {
			return fmt.Errorf("%s: %w", v.Type(), err)
		}
		if !ok {
			continue
		}
		x, present := data[tag.name]
		if !present {
			continue
		}
		if err := decodeValue(v.Field(i), x); err != nil {
			return fmt.Errorf("%s: %w", tag.name, err)
		}
	}
	return nil
}

func decodeValue(v reflect.Value, x any) error {
	if x == nil {
		v.SetZero()
		return nil
	}
	mismatch := func() error { return fmt.Errorf("cannot read a %T into a %s", x, v.Type()) }
	if v.Type() == timeType {
		t, ok := x.(time.Time)
		if !ok {
			return mismatch()
		}
		v.Set(reflect.ValueOf(t.UTC()))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			return mismatch()
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			return mismatch()
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := x.(int64)
		if !ok || v.OverflowInt(n) {
			return mismatch()
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := x.(int64)
		if !ok || n < 0 || v.OverflowUint(uint64(n)) {
			return mismatch()
		}
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		switch f := x.(type) {
		case float64:
			v.SetFloat(f)
		case int64:
			v.SetFloat(float64(f))
		default:
			return mismatch()
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b, ok := x.([]byte)
			if !ok {
				return mismatch()
			}
			v.SetBytes(append([]byte{}, b...))
			return nil
		}
		xs, ok := x.([]any)
		if !ok {
			return mismatch()
		}
		s := reflect.MakeSlice(v.Type(), len(xs), len(xs))
		for i, e := range xs {
			if err := decodeValue(s.Index(i), e); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		v.Set(s)
	case reflect.Map:
		xm, ok := x.(map[string]any)
		if !ok || v.Type().Key().Kind() != reflect.String {
			return mismatch()
		}
		m := reflect.MakeMapWithSize(v.Type(), len(xm))
		for k, e := range xm {
			ev := reflect.New(v.Type().Elem()).Elem()
			if err := decodeValue(ev, e); err != nil {
				return fmt.Errorf("[%q]: %w", k, err)
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), ev)
		}
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := decodeValue(p.Elem(), x); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Struct:
		xm, ok := x.(map[string]any)
		if !ok {
			return mismatch()
		}
		return decodeStruct(v, xm)
	default:
		return mismatch()
	}
	return nil
}
