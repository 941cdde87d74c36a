package config

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Var is one environment variable, as its Config field's tags declare it.
type Var struct {
	Name, Default, Help string
	// Cloud marks variables a Cloud Run deployment sets.
	Cloud bool

	index      []int // of the field in Config
	defaultDoc string
	want       string
	oneof      []string
	min, max   string
	url        bool
	trimSlash  bool
	lower      bool
}

// Vars lists every variable Load reads, in the order of Config's fields.
var Vars = varsOf(reflect.TypeFor[Config](), nil)

// varsOf reads the tags of t's fields, and of its struct fields' fields.
// A tag it cannot use is a programming error: it panics, at start-up, and
// the package's tests fail.
func varsOf(t reflect.Type, index []int) []Var {
	var out []Var
	for i := range t.NumField() {
		f := t.Field(i)
		idx := append(slices.Clone(index), i)
		name, ok := f.Tag.Lookup("env")
		if !ok {
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				out = append(out, varsOf(f.Type, idx)...)
			}
			continue
		}
		v := Var{
			Name: name, Default: f.Tag.Get("default"), Help: f.Tag.Get("help"), Cloud: f.Tag.Get("cloud") == "true",
			index: idx, defaultDoc: f.Tag.Get("defaultdoc"), want: f.Tag.Get("want"),
			min: f.Tag.Get("min"), max: f.Tag.Get("max"), url: f.Tag.Get("url") == "true", trimSlash: f.Tag.Get("trimslash") == "true",
			lower: f.Tag.Get("lower") == "true",
		}
		if o := f.Tag.Get("oneof"); o != "" {
			v.oneof = strings.Fields(o)
		}
		if v.Help == "" {
			panic("config: " + name + " has no help tag")
		}
		switch f.Type {
		case reflect.TypeFor[time.Duration]():
			for _, b := range []string{v.min, v.max} {
				if _, err := time.ParseDuration(b); b != "" && err != nil {
					panic(fmt.Sprintf("config: %s: bound %q: %v", name, b, err))
				}
			}
		default:
			switch f.Type.Kind() {
			case reflect.String, reflect.Bool:
			case reflect.Int:
				for _, b := range []string{v.min, v.max} {
					if _, err := strconv.Atoi(b); b != "" && err != nil {
						panic(fmt.Sprintf("config: %s: bound %q: %v", name, b, err))
					}
				}
			default:
				panic(fmt.Sprintf("config: %s: a field of type %s cannot be read from the environment", name, f.Type))
			}
		}
		if (v.min != "" || v.max != "" || v.oneof != nil) && v.want == "" {
			panic("config: " + name + " is checked but has no want tag for its error")
		}
		out = append(out, v)
	}
	return out
}

// lookupVar is the variable named name; another name is a programming
// error.
func lookupVar(name string) Var {
	i := slices.IndexFunc(Vars, func(v Var) bool { return v.Name == name })
	if i < 0 {
		panic("config: no variable " + name)
	}
	return Vars[i]
}

// set parses s (the variable's value, or its default) into v's field of
// c and checks it as v's tags say: an error "NAME=value: want ..." when it
// does not hold.
func (v Var) set(c *Config, s string) error {
	bad := func() error {
		want := v.want
		if want == "" {
			want = "an absolute http(s) URL"
		}
		return fmt.Errorf("%s=%q: want %s", v.Name, s, want)
	}
	f := reflect.ValueOf(c).Elem().FieldByIndex(v.index)
	switch {
	case f.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(s)
		if err != nil {
			return bad()
		}
		f.SetInt(int64(d))
		if lo, _ := time.ParseDuration(v.min); v.min != "" && d < lo {
			return bad()
		}
		if hi, _ := time.ParseDuration(v.max); v.max != "" && d > hi {
			return bad()
		}
	case f.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return bad()
		}
		f.SetInt(int64(n))
		if lo, _ := strconv.Atoi(v.min); v.min != "" && n < lo {
			return bad()
		}
		if hi, _ := strconv.Atoi(v.max); v.max != "" && n > hi {
			return bad()
		}
	case f.Kind() == reflect.Bool:
		if v.oneof != nil && !slices.Contains(v.oneof, s) {
			return bad()
		}
		f.SetBool(truthy(s))
	case f.Kind() == reflect.String:
		if v.lower {
			s = strings.ToLower(s)
		}
		if v.trimSlash {
			s = strings.TrimRight(s, "/")
		}
		f.SetString(s)
		if v.oneof != nil && s != "" && !slices.Contains(v.oneof, s) {
			return bad()
		}
		if v.url && s != "" {
			if p, err := url.Parse(s); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return bad()
			}
		}
	}
	return nil
}

// Table is the documentation's table of the variables: one row each, with
// its default and help, in Markdown.
func Table() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range Vars {
		def := "(unset)"
		switch {
		case v.defaultDoc != "":
			def = v.defaultDoc
		case v.Default != "":
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, v.Help)
	}
	return b.String()
}
