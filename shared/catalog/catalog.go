// Package catalog maps a provider's model name (fal's "flux-schnell",
// together's "llama-3.1-8b-instruct"...) to the Hugging Face model id the
// orchestrator deploys: the seed's get_hf_name(model_name, provider).
//
// The table is data (catalog.json, embedded), not code. Matching ignores
// case and surrounding spaces. Every id names a real repository with open
// weights (some gated: they need an hf_token).
package catalog

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

//go:embed catalog.json
var catalogJSON []byte

// Entry is one row of the catalogue.
type Entry struct {
	Provider    string `json:"provider"`
	ModelName   string `json:"model_name"`
	HFModelID   string `json:"hf_model_id"`
	Description string `json:"description"`
}

// Errors of Resolve, wrapped in a *LookupError whose message lists the
// known names.
var (
	ErrUnknownProvider = errors.New("unknown provider")
	ErrUnknownModel    = errors.New("unknown model name")
	ErrAmbiguousModel  = errors.New("ambiguous model name")
)

// LookupError is what Resolve returns when a name does not resolve. Its
// message is meant for a 422 response: it says which names are known.
type LookupError struct {
	Provider  string   // as given
	ModelName string   // as given
	Known     []string // the known names for Provider, the known providers, or the providers the name is ambiguous between
	Err       error    // ErrUnknownProvider, ErrUnknownModel or ErrAmbiguousModel
}

// Error implements error.
func (e *LookupError) Error() string {
	switch e.Err {
	case ErrUnknownProvider:
		return fmt.Sprintf("unknown provider %q; known providers: %s", e.Provider, strings.Join(e.Known, ", "))
	case ErrAmbiguousModel:
		return fmt.Sprintf("model_name %q means different models for providers %s: set provider", e.ModelName, strings.Join(e.Known, ", "))
	}
	if e.Provider == "" {
		return fmt.Sprintf("unknown model_name %q; known names: %s", e.ModelName, strings.Join(e.Known, ", "))
	}
	return fmt.Sprintf("unknown model_name %q for provider %s; known names for %s: %s",
		e.ModelName, e.Provider, normalize(e.Provider), strings.Join(e.Known, ", "))
}

// Unwrap returns the sentinel.
func (e *LookupError) Unwrap() error { return e.Err }

// Catalog is an immutable, validated table. It is safe for concurrent use.
type Catalog struct {
	entries    []Entry                     // sorted by provider, then name
	byProvider map[string]map[string]Entry // normalized provider → normalized name → entry
}

// defaultCatalog is parsed once; the embedded data is checked by the tests.
var defaultCatalog = func() *Catalog {
	var doc struct {
		Entries []Entry `json:"entries"`
	}
	if err := json.Unmarshal(catalogJSON, &doc); err != nil {
		panic(fmt.Sprintf("catalog: embedded catalog.json: %v", err))
	}
	c, err := New(doc.Entries)
	if err != nil {
		panic(fmt.Sprintf("catalog: embedded catalog.json: %v", err))
	}
	return c
}()

// Default returns the embedded catalogue.
func Default() *Catalog { return defaultCatalog }

// New builds a catalogue from entries. Provider, name and id must be set,
// ids shaped "owner/name", and no (provider, name) pair may repeat (ignoring
// case).
func New(entries []Entry) (*Catalog, error) {
	c := &Catalog{byProvider: map[string]map[string]Entry{}}
	for i, e := range entries {
		e.Provider, e.ModelName, e.HFModelID = normalize(e.Provider), normalize(e.ModelName), strings.TrimSpace(e.HFModelID)
		owner, name, ok := strings.Cut(e.HFModelID, "/")
		switch {
		case e.Provider == "" || e.ModelName == "":
			return nil, fmt.Errorf("entry %d: provider and model_name are required", i)
		case !ok || owner == "" || name == "" || strings.Contains(name, "/"):
			return nil, fmt.Errorf("entry %d (%s/%s): hf_model_id %q is not owner/name", i, e.Provider, e.ModelName, e.HFModelID)
		}
		names := c.byProvider[e.Provider]
		if names == nil {
			names = map[string]Entry{}
			c.byProvider[e.Provider] = names
		}
		if _, dup := names[e.ModelName]; dup {
			return nil, fmt.Errorf("entry %d: %s/%s is listed twice", i, e.Provider, e.ModelName)
		}
		names[e.ModelName] = e
		c.entries = append(c.entries, e)
	}
	sort.Slice(c.entries, func(i, j int) bool {
		a, b := c.entries[i], c.entries[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.ModelName < b.ModelName
	})
	return c, nil
}

// Resolve returns the Hugging Face id for modelName at provider.
//
// With provider "" the name is looked up under every provider: it resolves
// when every provider that knows it maps it to the same id (fal's and
// together's "flux-schnell" are the same model), and is ErrAmbiguousModel
// when they disagree. The error of an unknown name or provider is a
// *LookupError listing the known names.
func (c *Catalog) Resolve(provider, modelName string) (string, error) {
	p, n := normalize(provider), normalize(modelName)
	if p == "" {
		return c.resolveAnywhere(modelName, n)
	}
	names, ok := c.byProvider[p]
	if !ok {
		return "", &LookupError{Provider: provider, ModelName: modelName, Known: c.Providers(), Err: ErrUnknownProvider}
	}
	e, ok := names[n]
	if !ok {
		return "", &LookupError{Provider: provider, ModelName: modelName, Known: c.Names(p), Err: ErrUnknownModel}
	}
	return e.HFModelID, nil
}

func (c *Catalog) resolveAnywhere(modelName, n string) (string, error) {
	var id string
	var providers []string
	ambiguous := false
	for _, e := range c.entries {
		if e.ModelName != n {
			continue
		}
		if id != "" && e.HFModelID != id {
			ambiguous = true
		}
		id = e.HFModelID
		providers = append(providers, e.Provider)
	}
	switch {
	case id == "":
		return "", &LookupError{ModelName: modelName, Known: c.allNames(), Err: ErrUnknownModel}
	case ambiguous:
		return "", &LookupError{ModelName: modelName, Known: providers, Err: ErrAmbiguousModel}
	}
	return id, nil
}

// Names returns the model names known for provider (any case), sorted; nil
// for an unknown provider.
func (c *Catalog) Names(provider string) []string {
	names := c.byProvider[normalize(provider)]
	if names == nil {
		return nil
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Providers returns the providers, sorted.
func (c *Catalog) Providers() []string {
	out := make([]string, 0, len(c.byProvider))
	for p := range c.byProvider {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Entries returns every entry, sorted by provider then name (a copy).
func (c *Catalog) Entries() []Entry {
	return append([]Entry(nil), c.entries...)
}

func (c *Catalog) allNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range c.entries {
		if !seen[e.ModelName] {
			seen[e.ModelName] = true
			out = append(out, e.ModelName)
		}
	}
	sort.Strings(out)
	return out
}

func normalize(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
