package deploycheck

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// CheckReferences reports every expression that names a resource or a data
// source the module does not declare, where `terraform validate` would say
// "Reference to undeclared resource". typePrefixes are the resource type
// prefixes of the module's providers ("google_", "time_", ...): a reference
// is a traversal whose root starts with one of them, or data.TYPE.NAME.
func CheckReferences(m *Module, typePrefixes []string) []error {
	declared := map[string]bool{}
	for _, kind := range []string{"resource", "data"} {
		for _, blk := range m.blocks(kind) {
			if len(blk.Labels) == 2 {
				declared[kind+"."+blk.Labels[0]+"."+blk.Labels[1]] = true
			}
		}
	}
	seen := map[string]bool{}
	var problems []error
	for _, body := range m.bodies {
		for _, blk := range body.Blocks {
			where := strings.Join(append([]string{blk.Type}, blk.Labels...), ".")
			walkExprs(blk.Body, func(e hclsyntax.Expression) {
				for _, tr := range e.Variables() {
					ref, ok := resourceRef(tr, typePrefixes)
					if !ok || declared[ref] || seen[where+" "+ref] {
						continue
					}
					seen[where+" "+ref] = true
					problems = append(problems, fmt.Errorf("%s (%s): references %s, which no block declares", where, tr.SourceRange(), strings.TrimPrefix(ref, "resource.")))
				}
			})
		}
	}
	// Attributes are a map: sort for a stable report.
	sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	return problems
}

// resourceRef returns "resource.TYPE.NAME" or "data.TYPE.NAME" for a
// traversal that names one.
func resourceRef(tr hcl.Traversal, typePrefixes []string) (string, bool) {
	if len(tr) < 2 {
		return "", false
	}
	root := tr.RootName()
	attr := func(i int) (string, bool) {
		if i >= len(tr) {
			return "", false
		}
		a, ok := tr[i].(hcl.TraverseAttr)
		return a.Name, ok
	}
	if root == "data" {
		typ, ok1 := attr(1)
		name, ok2 := attr(2)
		return "data." + typ + "." + name, ok1 && ok2
	}
	for _, p := range typePrefixes {
		if strings.HasPrefix(root, p) {
			name, ok := attr(1)
			return "resource." + root + "." + name, ok
		}
	}
	return "", false
}

// CheckProvider reports every resource whose type starts with one of
// prefixes and that is not declared with provider = provider: the types
// that only that provider has (API Gateway is in google-beta only), where
// `terraform validate` would say the default provider "does not support
// resource type".
func CheckProvider(m *Module, provider string, prefixes []string) []error {
	var problems []error
	for _, blk := range m.blocks("resource") {
		if len(blk.Labels) != 2 {
			continue
		}
		matches := false
		for _, p := range prefixes {
			matches = matches || strings.HasPrefix(blk.Labels[0], p)
		}
		if !matches {
			continue
		}
		got := ""
		if a, ok := blk.Body.Attributes["provider"]; ok {
			if tr, ok := a.Expr.(*hclsyntax.ScopeTraversalExpr); ok {
				got = tr.Traversal.RootName()
			}
		}
		if got != provider {
			problems = append(problems, fmt.Errorf("%s.%s: provider %q, but only %s has this resource type: set provider = %s", blk.Labels[0], blk.Labels[1], got, provider, provider))
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	return problems
}
