package deploycheck

import (
	"encoding/json"
	"fmt"
	"strings"
)

// checkGatewayDocument checks an API Gateway OpenAPI 2.0 document as
// rendered by the configuration: each operation (its operationId starts
// with the entry point that serves it, as scripts/gatewayspec writes it)
// goes to that function's URL, keeps the request path and the caller's
// Authorization header.
func checkGatewayDocument(addr, doc string, byEntry map[string]*Function) []error {
	var errs []error
	var d struct {
		Swagger string `json:"swagger"`
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Backend     *struct {
				Address         string `json:"address"`
				PathTranslation string `json:"path_translation"`
				DisableAuth     bool   `json:"disable_auth"`
			} `json:"x-google-backend"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return []error{fmt.Errorf("%s: the routing document is not JSON: %w", addr, err)}
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
			if !op.Backend.DisableAuth {
				errs = append(errs, fmt.Errorf("%s: without disable_auth the gateway replaces the client's Authorization header (the API key) with its own token", where))
			}
		}
	}
	return errs
}
