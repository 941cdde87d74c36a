package storetest

import (
	"fmt"
	"hash/fnv"
	"reflect"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

// Populated returns a deployment with every field set to a non-zero value
// derived from the field's JSON path only (e.g. "watch.polls",
// "logs[1].message"), never from its Go name or its place among the Go
// fields: how the record groups its fields (sub-structs, embedding) does
// not change the record it returns, so a golden encoding of it pins the
// stored and served form across such moves. Times carry nanoseconds; every
// slice has two elements and every pointer is set.
func Populated() *deployment.Deployment {
	d := new(deployment.Deployment)
	populate(reflect.ValueOf(d).Elem(), "")
	return d
}

var populatedBase = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

func populate(v reflect.Value, path string) {
	h := fnv.New32a()
	h.Write([]byte(path))
	n := h.Sum32()%100000 + 1
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(populatedBase.Add(time.Duration(n) * time.Second)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(n) + 0.25)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte{0x00, byte(n), 0xff, '"'})
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			populate(s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMapWithSize(v.Type(), 1)
		k := reflect.New(v.Type().Key()).Elem()
		e := reflect.New(v.Type().Elem()).Elem()
		populate(k, path+".key")
		populate(e, path+".value")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		populate(p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			switch {
			case name == "-":
				continue
			case name == "" && sf.Anonymous:
				populate(v.Field(i), path) // embedded: its fields are the outer record's
				continue
			case name == "":
				name = sf.Name
			}
			if path != "" {
				name = path + "." + name
			}
			populate(v.Field(i), name)
		}
	default:
		panic(fmt.Sprintf("storetest: %s: cannot populate a %s", path, v.Kind()))
	}
}
