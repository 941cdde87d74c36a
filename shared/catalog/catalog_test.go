package catalog_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/catalog"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		provider, name string
		want           string
		wantErr        error
		wantInMessage  []string
	}{
		{provider: "fal", name: "veo3", want: "black-forest-labs/FLUX.1-schnell"},
		{provider: "FAL", name: "  Veo3 ", want: "black-forest-labs/FLUX.1-schnell"},
		{provider: "fal", name: "sdxl-turbo", want: "stabilityai/sdxl-turbo"},
		{provider: "together", name: "Llama-3.1-8B-Instruct", want: "meta-llama/Llama-3.1-8B-Instruct"},
		{provider: "replicate", name: "stability-ai/sdxl", want: "stabilityai/stable-diffusion-xl-base-1.0"},
		{provider: "", name: "flux-schnell", want: "black-forest-labs/FLUX.1-schnell"}, // fal and together agree
		{provider: "", name: "qwen2.5-14b-instruct", want: "Qwen/Qwen2.5-14B-Instruct"},
		{provider: "fal", name: "veo4", wantErr: catalog.ErrUnknownModel,
			wantInMessage: []string{`"veo4"`, "known names for fal:", "flux-schnell", "sdxl-turbo", "veo3"}},
		{provider: "together", name: "veo3", wantErr: catalog.ErrUnknownModel,
			wantInMessage: []string{"known names for together:", "llama-3.1-8b-instruct"}},
		{provider: "midjourney", name: "v6", wantErr: catalog.ErrUnknownProvider,
			wantInMessage: []string{`"midjourney"`, "fal, huggingface, replicate, together"}},
		{provider: "", name: "nope", wantErr: catalog.ErrUnknownModel, wantInMessage: []string{"known names:", "veo3"}},
	}
	c := catalog.Default()
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.name, func(t *testing.T) {
			got, err := c.Resolve(tt.provider, tt.name)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Resolve error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
			for _, frag := range tt.wantInMessage {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("message %q lacks %q", err.Error(), frag)
				}
			}
		})
	}
}

func TestResolveAmbiguous(t *testing.T) {
	c, err := catalog.New([]catalog.Entry{
		{Provider: "a", ModelName: "flux", HFModelID: "black-forest-labs/FLUX.1-schnell"},
		{Provider: "b", ModelName: "FLUX", HFModelID: "black-forest-labs/FLUX.1-dev"},
		{Provider: "c", ModelName: "sd", HFModelID: "stabilityai/sdxl-turbo"},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Resolve("", "flux")
	var le *catalog.LookupError
	if !errors.As(err, &le) || !errors.Is(err, catalog.ErrAmbiguousModel) {
		t.Fatalf("Resolve = %v, want ErrAmbiguousModel", err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, le.Known); diff != "" {
		t.Errorf("Known (-want +got):\n%s", diff)
	}
	if got, err := c.Resolve("b", "flux"); err != nil || got != "black-forest-labs/FLUX.1-dev" {
		t.Errorf("Resolve(b, flux) = %q, %v", got, err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		entries []catalog.Entry
		wantErr string
	}{
		{name: "ok", entries: []catalog.Entry{{Provider: "p", ModelName: "m", HFModelID: "o/n"}}},
		{name: "duplicate ignoring case", entries: []catalog.Entry{
			{Provider: "p", ModelName: "m", HFModelID: "o/n"}, {Provider: "P", ModelName: "M ", HFModelID: "o/x"}},
			wantErr: "listed twice"},
		{name: "missing provider", entries: []catalog.Entry{{ModelName: "m", HFModelID: "o/n"}}, wantErr: "required"},
		{name: "bad id", entries: []catalog.Entry{{Provider: "p", ModelName: "m", HFModelID: "just-a-name"}}, wantErr: "not owner/name"},
		{name: "bad id, three parts", entries: []catalog.Entry{{Provider: "p", ModelName: "m", HFModelID: "a/b/c"}}, wantErr: "not owner/name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := catalog.New(tt.entries)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestListings(t *testing.T) {
	c := catalog.Default()
	if diff := cmp.Diff([]string{"fal", "huggingface", "replicate", "together"}, c.Providers()); diff != "" {
		t.Errorf("Providers (-want +got):\n%s", diff)
	}
	names := c.Names("Fal")
	if !sort.StringsAreSorted(names) || len(names) == 0 || !contains(names, "veo3") {
		t.Errorf("Names(fal) = %v, want sorted and holding veo3", names)
	}
	if got := c.Names("nobody"); got != nil {
		t.Errorf("Names(nobody) = %v, want nil", got)
	}
	entries := c.Entries()
	entries[0].HFModelID = "mutated/by-caller"
	if c.Entries()[0].HFModelID == "mutated/by-caller" {
		t.Error("Entries returns the catalogue's own slice")
	}
	for _, e := range c.Entries() {
		if e.Description == "" {
			t.Errorf("%s/%s has no description", e.Provider, e.ModelName)
		}
	}
}

// Every catalogue id is a valid Hub id that the simulator serves, so that
// the offline demo can deploy every catalogue name.
func TestEveryEntryLoadsInHubsim(t *testing.T) {
	sim := hubsim.New()
	defer sim.Close()
	sim.SetToken("hf_catalog_test_token", hubsim.AllRepos)
	client := huggingface.NewClient(sim.URL, nil)
	for _, e := range catalog.Default().Entries() {
		t.Run(e.Provider+"/"+e.ModelName, func(t *testing.T) {
			if !huggingface.ValidID(e.HFModelID) {
				t.Fatalf("%q is not a valid Hub id", e.HFModelID)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := client.Inspect(ctx, e.HFModelID, secret.New("hf_catalog_test_token"))
			if err != nil {
				t.Fatalf("Inspect(%s): %v", e.HFModelID, err)
			}
			if got.ModelID != e.HFModelID {
				t.Errorf("canonical id = %q, catalogue says %q (use the canonical id)", got.ModelID, e.HFModelID)
			}
			if got.Estimate.VRAMGB <= 0 || got.Estimate.WeightBytes <= 0 {
				t.Errorf("estimate %+v is empty", got.Estimate)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
