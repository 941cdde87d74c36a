package deploycheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// load writes src as main.tf of a temporary module and loads it.
func load(t *testing.T, src string) *Module {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func messages(errs []error) []string {
	var out []string
	for _, err := range errs {
		// Drop the source range: the tests name what, not where.
		msg := err.Error()
		if i := strings.Index(msg, " ("); i >= 0 {
			if j := strings.Index(msg[i:], "): "); j >= 0 {
				msg = msg[:i] + msg[i+j+1:]
			}
		}
		out = append(out, msg)
	}
	return out
}

func TestCheckReferences(t *testing.T) {
	const decl = `
resource "google_service_account" "sa" {
  for_each   = toset(["a"])
  account_id = each.key
}
data "google_project" "this" {}
`
	cases := []struct {
		name, src string
		want      []string
	}{
		{"declared resource and data source", `
output "x" {
  value = [google_service_account.sa["a"].email, data.google_project.this.number]
}`, nil},
		{"undeclared resource", `
output "x" {
  value = google_service_account.tasks.email
}`, []string{"output.x: references google_service_account.tasks, which no block declares"}},
		{"undeclared data source", `
output "x" {
  value = data.google_project.other.number
}`, []string{"output.x: references data.google_project.other, which no block declares"}},
		{"in a nested block and depends_on", `
resource "google_project_iam_member" "m" {
  member = "x"
  condition {
    title = google_kms_key_ring.r.name
  }
  depends_on = [google_service_account.sa, time_sleep.wait]
}`, []string{
			"resource.google_project_iam_member.m: references google_kms_key_ring.r, which no block declares",
			"resource.google_project_iam_member.m: references time_sleep.wait, which no block declares",
		}},
		{"variables, locals, each and iterators are not resources", `
locals {
  l = { for k, v in var.m : k => v }
}
variable "m" {
  default = {}
}
resource "google_project_iam_member" "m" {
  for_each = local.l
  member   = each.value
  dynamic "condition" {
    for_each = [1]
    content {
      title = condition.value
    }
  }
}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := messages(CheckReferences(load(t, decl+c.src), []string{"google_", "time_"}))
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("CheckReferences (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckProvider(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"on the beta provider", `
resource "google_api_gateway_api" "api" {
  provider = google-beta
  api_id   = "x"
}`, nil},
		{"on the default provider", `
resource "google_api_gateway_api" "api" {
  api_id = "x"
}`, []string{`google_api_gateway_api.api: provider "", but only google-beta has this resource type: set provider = google-beta`}},
		{"on the GA provider named", `
resource "google_api_gateway_gateway" "gw" {
  provider = google
}`, []string{`google_api_gateway_gateway.gw: provider "google", but only google-beta has this resource type: set provider = google-beta`}},
		{"other types are free", `
resource "google_service_account" "sa" {
  account_id = "x"
}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, err := range CheckProvider(load(t, c.src), "google-beta", []string{"google_api_gateway_"}) {
				got = append(got, err.Error())
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("CheckProvider (-want +got):\n%s", diff)
			}
		})
	}
}
