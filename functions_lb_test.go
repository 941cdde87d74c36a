package orchestrator_test

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/shared/deploycheck"
)

// TestLoadBalancerRoutesMatchTheAPI: the optional load balancer's route
// rules (terraform/lb.tf, local.lb_routes, first match by priority, the
// Service function by default) send every path and method of api.Routes()
// to the function that serves it.
func TestLoadBalancerRoutesMatchTheAPI(t *testing.T) {
	m, err := deploycheck.Load("terraform")
	if err != nil {
		t.Fatal(err)
	}
	fns, _, err := m.Functions()
	if err != nil {
		t.Fatal(err)
	}
	keyRe := regexp.MustCompile(`\["([^"]+)"\]`)
	entry := map[string]string{} // for_each key → entry point
	for _, f := range fns {
		if k := keyRe.FindStringSubmatch(f.Address); k != nil {
			entry[k[1]] = f.EntryPoint
		}
	}
	type rule struct {
		priority             int
		fn, method, full, pf string
	}
	var rules []rule
	lv := m.Local("lb_routes")
	if !lv.IsKnown() || lv.IsNull() || !lv.CanIterateElements() {
		t.Fatalf("local.lb_routes is not readable: %#v", lv)
	}
	str := func(v cty.Value) string {
		if v.IsNull() || !v.IsKnown() {
			return ""
		}
		return v.AsString()
	}
	for it := lv.ElementIterator(); it.Next(); {
		_, v := it.Element()
		p, _ := v.GetAttr("priority").AsBigFloat().Int64()
		rules = append(rules, rule{int(p), str(v.GetAttr("function")), str(v.GetAttr("method")), str(v.GetAttr("full")), str(v.GetAttr("prefix"))})
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].priority < rules[j].priority })
	route := func(method, path string) string {
		for _, r := range rules {
			if r.method != "" && r.method != method {
				continue
			}
			if (r.full != "" && r.full == path) || (r.pf != "" && strings.HasPrefix(path, r.pf)) {
				return entry[r.fn]
			}
		}
		return entry["service"]
	}
	sample := strings.NewReplacer("{id}", "dep_2026_a3686d66", "{$}", "")
	for _, r := range api.Routes() {
		path := sample.Replace(r.Pattern)
		if strings.HasSuffix(path, "/") && path != "/" {
			path += "asset.js"
		}
		for _, method := range r.Methods {
			if got := route(method, path); got != r.Function {
				t.Errorf("%s %s: the load balancer sends it to %q, the API serves it in %s", method, path, got, r.Function)
			}
		}
	}
}
