package deploycheck

import (
	"encoding/json"
	"fmt"
	"strings"
)

// checkGatewayDocument checks an API Gateway OpenAPI 2.0 document as
// rendered by the configuration: each operation (its operationId starts
// with the entry point that serves it, as scripts/gatewayspec writes it)
// goes to that function's URL, keeps the request path, and carries an ID
// token of the gateway's account for that URL (no disable_auth): the
// functions are invocable by that account alone. It returns the entry
// points the document sends requests to.
func checkGatewayDocument(addr, doc string, byEntry map[string]*Function) (errs []error, entries []string) {
	var d struct {
		Swagger string `json:"swagger"`
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Backend     *struct {
				Address         string `json:"address"`
				PathTranslation string `json:"path_translation"`
				DisableAuth     bool   `json:"disable_auth"`
				JWTAudience     string `json:"jwt_audience"`
			} `json:"x-google-backend"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return []error{fmt.Errorf("%s: the routing document is not JSON: %w", addr, err)}, nil
	}
	if d.Swagger != "2.0" {
		errs = append(errs, fmt.Errorf("%s: swagger %q: API Gateway takes OpenAPI 2.0", addr, d.Swagger))
	}
	for path, ops := range d.Paths {
		for method, op := range ops {
			where := fmt.Sprintf("%s: %s %s", addr, strings.ToUpper(method), path)
			ep, _, _ := strings.Cut(op.OperationID, "_")
			f := byEntry[ep]
			if f == nil {
				errs = append(errs, fmt.Errorf("%s: operationId %q names no function", where, op.OperationID))
				continue
			}
			if op.Backend == nil {
				errs = append(errs, fmt.Errorf("%s: no x-google-backend", where))
				continue
			}
			if want := RunURL(f); op.Backend.Address != want {
				errs = append(errs, fmt.Errorf("%s: sent to %q, not to %s (%s)", where, op.Backend.Address, ep, want))
			}
			if op.Backend.PathTranslation != "APPEND_PATH_TO_ADDRESS" {
				errs = append(errs, fmt.Errorf("%s: path_translation %q: the function routes by the request path (APPEND_PATH_TO_ADDRESS)", where, op.Backend.PathTranslation))
			}
			if op.Backend.DisableAuth {
				errs = append(errs, fmt.Errorf("%s: disable_auth: the gateway sends no ID token, and the function, invocable by the gateway's account alone, refuses every request", where))
			}
			if a := op.Backend.JWTAudience; a != "" && a != RunURL(f) {
				errs = append(errs, fmt.Errorf("%s: jwt_audience %q: Cloud Run accepts a token for the function's URL %s", where, a, RunURL(f)))
			}
			entries = append(entries, ep)
		}
	}
	return errs, entries
}
