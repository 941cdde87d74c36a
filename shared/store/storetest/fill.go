package storetest

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

var timeType = reflect.TypeFor[time.Time]()

// Filled returns a deployment with every field set to a distinct non-zero
// value, found by reflection: a field added to deployment.Deployment later is
// covered without touching this package, so a store that forgets to persist
// it fails the round trip. Times carry nanoseconds (stores may round them).
// ID, Owner, Status (downloading_model), StatusChangedAt and CreatedAt are
// set from the arguments.
func Filled(t testing.TB, id, owner string, createdAt time.Time) *deployment.Deployment {
	t.Helper()
	d := &deployment.Deployment{}
	f := filler{base: createdAt.UTC()}
	if err := f.fill(reflect.ValueOf(d).Elem(), "deployment"); err != nil {
		t.Fatalf("storetest: filling a deployment: %v", err)
	}
	d.ID = id
	d.Owner = owner
	d.Status = deployment.StatusDownloadingModel
	d.StatusChangedAt = createdAt.UTC().Add(2 * time.Second)
	d.CreatedAt = createdAt.UTC()
	for i := range d.Logs {
		d.Logs[i].Level = deployment.LevelInfo
	}
	return d
}

type filler struct {
	base time.Time
	n    int
}

func (f *filler) fill(v reflect.Value, path string) error {
	f.n++
	n := f.n
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(f.base.Add(time.Duration(n)*time.Minute + 123456789*time.Nanosecond)))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(path + "-" + strconv.Itoa(n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(n) + 0.5)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			// Bytes that survive no text encoding by accident.
			v.SetBytes([]byte{0x00, byte(n), 0xff, 0x80, '"', '\\'})
			return nil
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			if err := f.fill(s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMapWithSize(v.Type(), 1)
		k := reflect.New(v.Type().Key()).Elem()
		e := reflect.New(v.Type().Elem()).Elem()
		if err := f.fill(k, path+".key"); err != nil {
			return err
		}
		if err := f.fill(e, path+".value"); err != nil {
			return err
		}
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := f.fill(p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			if err := f.fill(v.Field(i), path+"."+sf.Name); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: unsupported kind %s", path, v.Kind())
	}
	return nil
}
