package hubsim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
)

type answer struct {
	Status   int
	Code     string // X-Error-Code
	Message  string // X-Error-Message
	Location string
}

func get(t *testing.T, s *hubsim.Server, method, path, token string) (answer, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{Status: resp.StatusCode, Code: resp.Header.Get("X-Error-Code"), Message: resp.Header.Get("X-Error-Message"),
		Location: resp.Header.Get("Location")}, body, resp.Header
}

func TestErrorsAreHubShaped(t *testing.T) {
	const (
		llama  = "meta-llama/Llama-3.1-8B-Instruct"
		priv   = "acme/secret"
		good   = "hf_good_token_01"
		grants = "hf_llama_token_01"
	)
	s := hubsim.New()
	defer s.Close()
	s.SetToken(good)
	s.SetToken(grants, llama, priv)
	s.AddModel(hubsim.Model{ID: priv, Private: true, Files: []hubsim.File{{Name: "config.json", Size: 2, Content: []byte("{}")}}})
	s.AddModel(hubsim.Model{ID: "acme/gone", Disabled: true})
	sha := mustModel(t, s, llama).SHA

	tests := []struct {
		name, method, path, token string
		want                      answer
	}{
		{"info", "GET", "/api/models/" + llama, "", answer{Status: 200}},
		{"info, id in another case", "GET", "/api/models/META-LLAMA/llama-3.1-8b-instruct", "", answer{Status: 200}},
		{"missing, anonymous: 401 without code", "GET", "/api/models/acme/nothing", "", answer{Status: 401, Message: "Invalid username or password."}},
		{"missing, with token", "GET", "/api/models/acme/nothing", good, answer{Status: 404, Code: "RepoNotFound", Message: "Repository not found"}},
		{"private, anonymous", "GET", "/api/models/" + priv, "", answer{Status: 401, Message: "Invalid username or password."}},
		{"private, other token", "GET", "/api/models/" + priv, good, answer{Status: 404, Code: "RepoNotFound", Message: "Repository not found"}},
		{"private, granted", "GET", "/api/models/" + priv, grants, answer{Status: 200}},
		{"unknown token", "GET", "/api/models/" + llama, "hf_nope", answer{Status: 401, Message: "Invalid credentials in Authorization header"}},
		{"disabled", "GET", "/api/models/acme/gone", "", answer{Status: 403, Message: "Access to this resource is disabled."}},
		{"renamed", "GET", "/api/models/bert-base-uncased?blobs=true", "", answer{Status: 307, Location: "/api/models/google-bert/bert-base-uncased?blobs=true"}},
		{"renamed, revision", "GET", "/api/models/gpt2/revision/main", "", answer{Status: 307, Location: "/api/models/openai-community/gpt2/revision/main"}},
		{"revision main", "GET", "/api/models/" + llama + "/revision/main", "", answer{Status: 200}},
		{"revision sha", "GET", "/api/models/" + llama + "/revision/" + sha, "", answer{Status: 200}},
		{"revision unknown", "GET", "/api/models/" + llama + "/revision/v9", "", answer{Status: 404, Code: "RevisionNotFound", Message: "Invalid rev id: v9"}},
		{"auth-check gated, anonymous", "GET", "/api/models/" + llama + "/auth-check", "", answer{Status: 401, Code: "GatedRepo",
			Message: "Access to model " + llama + " is restricted. You must have access to it and be authenticated to access it. Please log in."}},
		{"auth-check gated, not granted", "GET", "/api/models/" + llama + "/auth-check", good, answer{Status: 403, Code: "GatedRepo",
			Message: "Access to model " + llama + " is restricted and you are not in the authorized list. Visit https://huggingface.co/" + llama + " to ask for access."}},
		{"auth-check gated, granted", "GET", "/api/models/" + llama + "/auth-check", grants, answer{Status: 200}},
		{"auth-check public", "GET", "/api/models/openai-community/gpt2/auth-check", "", answer{Status: 200}},
		{"resolve gated, not granted", "HEAD", "/" + llama + "/resolve/" + sha + "/config.json", good, answer{Status: 403, Code: "GatedRepo",
			Message: "Access to model " + llama + " is restricted and you are not in the authorized list. Visit https://huggingface.co/" + llama + " to ask for access."}},
		{"resolve gated, granted", "HEAD", "/" + llama + "/resolve/" + sha + "/config.json", grants, answer{Status: 200}},
		{"resolve missing file", "GET", "/openai-community/gpt2/resolve/main/nope.json", "", answer{Status: 404, Code: "EntryNotFound", Message: "Entry not found"}},
		{"resolve bad revision", "GET", "/openai-community/gpt2/resolve/v9/config.json", "", answer{Status: 404, Code: "RevisionNotFound", Message: "Invalid rev id: v9"}},
		{"resolve renamed", "GET", "/gpt2/resolve/main/config.json", "", answer{Status: 307, Location: "/openai-community/gpt2/resolve/main/config.json"}},
		{"unknown page", "GET", "/nothing", "", answer{Status: 404}},
		{"POST refused", "POST", "/api/models/openai-community/gpt2", "", answer{Status: 405}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _ := get(t, s, tt.method, tt.path, tt.token)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", tt.method, tt.path, diff)
			}
		})
	}
}

func TestModelInfo(t *testing.T) {
	s := hubsim.New()
	defer s.Close()
	type sib struct {
		RFilename string `json:"rfilename"`
		Size      *int64 `json:"size"`
		BlobID    string `json:"blobId"`
	}
	type info struct {
		ID          string         `json:"id"`
		SHA         string         `json:"sha"`
		Gated       any            `json:"gated"`
		Author      string         `json:"author"`
		CardData    map[string]any `json:"cardData"`
		Siblings    []sib          `json:"siblings"`
		Safetensors *struct {
			Parameters map[string]int64 `json:"parameters"`
			Total      int64            `json:"total"`
		} `json:"safetensors"`
	}
	decode := func(path string) info {
		a, body, _ := get(t, s, "GET", path, "")
		if a.Status != 200 {
			t.Fatalf("GET %s: %+v", path, a)
		}
		var i info
		if err := json.Unmarshal(body, &i); err != nil {
			t.Fatal(err)
		}
		return i
	}

	withBlobs := decode("/api/models/meta-llama/Llama-3.1-8B-Instruct?blobs=true")
	if withBlobs.Gated != "manual" || withBlobs.Author != "meta-llama" || withBlobs.CardData["license"] != "llama3.1" {
		t.Errorf("gated/author/cardData = %v/%v/%v", withBlobs.Gated, withBlobs.Author, withBlobs.CardData)
	}
	if withBlobs.Safetensors == nil || withBlobs.Safetensors.Total != 8030261248 || withBlobs.Safetensors.Parameters["BF16"] != 8030261248 {
		t.Errorf("safetensors = %+v", withBlobs.Safetensors)
	}
	for _, sb := range withBlobs.Siblings {
		if sb.Size == nil || sb.BlobID == "" {
			t.Errorf("sibling %s without size or blobId under blobs=true", sb.RFilename)
		}
	}
	without := decode("/api/models/meta-llama/Llama-3.1-8B-Instruct")
	for _, sb := range without.Siblings {
		if sb.Size != nil {
			t.Errorf("sibling %s has a size without blobs=true", sb.RFilename)
		}
	}
	if len(without.Siblings) != len(withBlobs.Siblings) || len(without.Siblings) == 0 {
		t.Errorf("siblings: %d without blobs, %d with", len(without.Siblings), len(withBlobs.Siblings))
	}
	if diffusers := decode("/api/models/stabilityai/sdxl-turbo"); diffusers.Safetensors != nil || diffusers.Gated != false {
		t.Errorf("sdxl-turbo: safetensors %+v, gated %v; want none, false", diffusers.Safetensors, diffusers.Gated)
	}
}

func TestResolveServesFixtureFiles(t *testing.T) {
	s := hubsim.New()
	defer s.Close()
	m := mustModel(t, s, "stabilityai/sdxl-turbo")
	a, body, h := get(t, s, "GET", "/stabilityai/sdxl-turbo/resolve/"+m.SHA+"/model_index.json", "")
	if a.Status != 200 || h.Get("X-Repo-Commit") != m.SHA {
		t.Fatalf("GET model_index.json: %+v, X-Repo-Commit %q", a, h.Get("X-Repo-Commit"))
	}
	var index map[string]any
	if err := json.Unmarshal(body, &index); err != nil || index["_class_name"] != "StableDiffusionXLPipeline" {
		t.Errorf("model_index.json = %s (%v)", body, err)
	}
	a, body, h = get(t, s, "HEAD", "/stabilityai/sdxl-turbo/resolve/main/unet/diffusion_pytorch_model.fp16.safetensors", "")
	if a.Status != 200 || len(body) != 0 || h.Get("X-Linked-Size") != "5135149760" {
		t.Errorf("HEAD weight file: %+v, %d bytes, X-Linked-Size %q", a, len(body), h.Get("X-Linked-Size"))
	}
}

func TestFaults(t *testing.T) {
	s := hubsim.New()
	defer s.Close()
	s.RateLimitNext(1, 1500*time.Millisecond)
	s.FailNext(2, http.StatusServiceUnavailable)
	s.FailNext(0, http.StatusInternalServerError) // no-op

	a, _, h := get(t, s, "GET", "/api/models/openai-community/gpt2", "")
	got := []string{fmt.Sprint(a.Status), h.Get("Retry-After"), h.Get("RateLimit"), h.Get("RateLimit-Policy")}
	want := []string{"429", "2", `"api";r=0;t=2`, `"fixed window";"api";q=500;w=300`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rate limited answer (-want +got):\n%s", diff)
	}
	for i := range 2 {
		if a, _, _ := get(t, s, "GET", "/api/models/openai-community/gpt2", ""); a.Status != 503 {
			t.Errorf("request %d after the 429: status %d, want 503", i+2, a.Status)
		}
	}
	if a, _, _ := get(t, s, "GET", "/api/models/openai-community/gpt2", ""); a.Status != 200 {
		t.Errorf("after the faults: status %d, want 200", a.Status)
	}
	if n := s.Requests(); n != 4 {
		t.Errorf("Requests = %d, want 4", n)
	}
}

func TestTokens(t *testing.T) {
	const llama = "/api/models/meta-llama/Llama-3.1-8B-Instruct/auth-check"
	tests := []struct {
		name  string
		setup func(*hubsim.Server)
		token string
		want  int
	}{
		{name: "undeclared token", token: "hf_x", want: 401},
		{name: "accept any token", setup: func(s *hubsim.Server) { s.SetAcceptAnyToken(true) }, token: "hf_x", want: 200},
		{name: "grant replaced", setup: func(s *hubsim.Server) {
			s.SetToken("hf_x", hubsim.AllRepos)
			s.SetToken("hf_x")
		}, token: "hf_x", want: 403},
		{name: "ungated on demand", setup: func(s *hubsim.Server) { s.SetGated("meta-llama/Llama-3.1-8B-Instruct", "") }, want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := hubsim.New()
			defer s.Close()
			if tt.setup != nil {
				tt.setup(s)
			}
			if a, _, _ := get(t, s, "GET", llama, tt.token); a.Status != tt.want {
				t.Errorf("status %d, want %d (%+v)", a.Status, tt.want, a)
			}
		})
	}
}

func TestLogHoldsNoToken(t *testing.T) {
	s := hubsim.New()
	defer s.Close()
	s.SetToken("hf_secret_value_123", hubsim.AllRepos)
	get(t, s, "GET", "/api/models/openai-community/gpt2?blobs=true", "hf_secret_value_123")
	want := []hubsim.Request{{Method: "GET", Path: "/api/models/openai-community/gpt2", Query: "blobs=true", Authenticated: true}}
	if diff := cmp.Diff(want, s.Log()); diff != "" {
		t.Errorf("Log (-want +got):\n%s", diff)
	}
	if strings.Contains(fmt.Sprintf("%+v", s.Log()), "hf_secret_value_123") {
		t.Error("the log holds the token")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := hubsim.New()
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			switch i % 4 {
			case 0:
				s.SetToken(fmt.Sprintf("hf_%d", i), hubsim.AllRepos)
			case 1:
				s.FailNext(1, http.StatusBadGateway)
			case 2:
				s.SetDisabled("openai-community/gpt2", i%8 == 2)
			}
			resp, err := http.Get(s.URL + "/api/models/google-bert/bert-base-uncased?blobs=true")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			_ = s.Requests()
		})
	}
	wg.Wait()
	if n := s.Requests(); n != 16 {
		t.Errorf("Requests = %d, want 16", n)
	}
}

func TestPreloaded(t *testing.T) {
	s := hubsim.New()
	defer s.Close()
	ids := hubsim.Preloaded()
	for _, want := range []string{"stabilityai/sdxl-turbo", "black-forest-labs/FLUX.1-schnell", "meta-llama/Llama-3.1-8B-Instruct",
		"mistralai/Mistral-7B-Instruct-v0.3", "google-bert/bert-base-uncased"} {
		found := false
		for _, id := range ids {
			found = found || id == want
		}
		if !found {
			t.Errorf("Preloaded lacks %s", want)
		}
	}
	for _, id := range ids {
		m := mustModel(t, s, id)
		if len(m.SHA) != 40 || len(m.Files) == 0 {
			t.Errorf("%s: sha %q, %d files", id, m.SHA, len(m.Files))
		}
	}
	if m := mustModel(t, s, "meta-llama/Llama-3.1-8B-Instruct"); m.Gated != "manual" {
		t.Errorf("Llama 3.1 8B gated = %q, want manual", m.Gated)
	}
}

func mustModel(t *testing.T, s *hubsim.Server, id string) hubsim.Model {
	t.Helper()
	m, ok := s.Model(id)
	if !ok {
		t.Fatalf("no model %s", id)
	}
	return m
}
