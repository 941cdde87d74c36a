package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/openapi"
)

// TestDocumentRequestExamplesAreAccepted: every request example of the
// OpenAPI document (create and PATCH) is accepted by the server today, so a
// client that sends one as it is gets a 2xx, not a 422 (an expires_at in
// the past did that).
func TestDocumentRequestExamplesAreAccepted(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"` // operations and parameters
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	for _, tc := range []struct {
		path, method, target string
		want                 int
	}{
		{"/v1/deployments", "post", "/v1/deployments", 202},
		{"/v1/deployments/{deployment_id}", "patch", "/v1/deployments/" + id, 200},
	} {
		var op struct {
			RequestBody struct {
				Content map[string]struct {
					Examples map[string]struct {
						Value json.RawMessage `json:"value"`
					} `json:"examples"`
				} `json:"content"`
			} `json:"requestBody"`
		}
		if err := json.Unmarshal(doc.Paths[tc.path][tc.method], &op); err != nil {
			t.Fatal(err)
		}
		examples := op.RequestBody.Content["application/json"].Examples
		if len(examples) == 0 {
			t.Errorf("%s %s has no request example", tc.method, tc.path)
		}
		for name, ex := range examples {
			t.Run(tc.method+" "+name, func(t *testing.T) {
				if rec := f.do(t, strings.ToUpper(tc.method), tc.target, keyA, string(ex.Value)); rec.Code != tc.want {
					t.Errorf("example %s = %d %s", ex.Value, rec.Code, rec.Body)
				}
			})
		}
	}
}
