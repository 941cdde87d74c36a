package orchestrator_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The provider pins that the real terraform tests (functions_terraform_plan_test.go,
// built with -tags terraformreal) validate and plan with.

// providerPin is one entry of terraform/versions.tf's required_providers.
type providerPin struct {
	Name, Source, Version string
}

var exactVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// providerPins reads required_providers from dir/versions.tf, sorted by name.
func providerPins(dir string) ([]providerPin, error) {
	path := filepath.Join(dir, "versions.tf")
	f, diags := hclparse.NewParser().ParseHCLFile(path)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %s: %w", path, diags)
	}
	var pins []providerPin
	for _, tf := range f.Body.(*hclsyntax.Body).Blocks {
		if tf.Type != "terraform" {
			continue
		}
		for _, rp := range tf.Body.Blocks {
			if rp.Type != "required_providers" {
				continue
			}
			for name, attr := range rp.Body.Attributes {
				v, diags := attr.Expr.Value(nil)
				if diags.HasErrors() {
					return nil, fmt.Errorf("%s: required_providers.%s: %w", path, name, diags)
				}
				p := providerPin{Name: name}
				if v.Type().IsObjectType() && v.Type().HasAttribute("source") {
					p.Source = v.GetAttr("source").AsString()
				}
				if v.Type().IsObjectType() && v.Type().HasAttribute("version") {
					p.Version = v.GetAttr("version").AsString()
				}
				pins = append(pins, p)
			}
		}
	}
	if len(pins) == 0 {
		return nil, fmt.Errorf("%s: no required_providers", path)
	}
	sort.Slice(pins, func(i, j int) bool { return pins[i].Name < pins[j].Name })
	return pins, nil
}

// TestTerraformProviderPinsExact: every provider is pinned to the one version
// the tests validate and plan with (issue 24 item 2). A range lets a user's
// init pick a version nothing tested: "~> 6.0" allowed 6.0 to 6.11, which
// lack the urls attribute the URL check reads.
func TestTerraformProviderPinsExact(t *testing.T) {
	pins, err := providerPins("terraform")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if !exactVersion.MatchString(p.Version) {
			t.Errorf("provider %s: version %q is not one exact version", p.Name, p.Version)
		}
		if want := "hashicorp/" + p.Name; p.Source != want {
			t.Errorf("provider %s: source %q, want %q (the mirror holds HashiCorp's providers only)", p.Name, p.Source, want)
		}
	}
	if _, err := os.Stat(filepath.Join("terraform", ".terraform.lock.hcl")); err == nil {
		if out, err := exec.Command("git", "ls-files", "--error-unmatch", "terraform/.terraform.lock.hcl").CombinedOutput(); err == nil {
			t.Errorf("terraform/.terraform.lock.hcl is committed (%s): a lock made from locally built providers carries their hashes, not the registry's", bytes.TrimSpace(out))
		}
	}
}
