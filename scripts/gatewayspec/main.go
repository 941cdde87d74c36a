// Command gatewayspec writes the API Gateway configuration of the public API
// (OpenAPI 2.0 with x-google-backend), generated from api.Routes(), to
// terraform/gateway-openapi.json.tftpl, the template terraform/gateway.tf
// fills with the functions' URLs:
//
//	go run ./scripts/gatewayspec            # rewrite the file (make gateway-spec)
//	go run ./scripts/gatewayspec -o -       # print it
//
// A test fails when the committed file differs from what this generates.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/visgate/deployment-orchestrator/functions/api"
)

// DefaultOutput is the committed template, relative to the repository root.
const DefaultOutput = "terraform/gateway-openapi.json.tftpl"

func main() {
	out := flag.String("o", DefaultOutput, "output file, - for stdout")
	flag.Parse()
	doc, err := Document(api.Routes())
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewayspec:", err)
		os.Exit(1)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(doc)
	} else {
		err = os.WriteFile(*out, doc, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewayspec:", err)
		os.Exit(1)
	}
}
