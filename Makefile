# Deployment Orchestrator. `make run` serves the API on the embedded default;
# `make test` runs every test, starting what the tests need (emulators on
# free ports, the inference worker's environment); see scripts/test.sh.
SHELL := /bin/bash
GO ?= go
PORT ?= 8080
export TF_CLI_CONFIG_FILE ?= /dev/null

.PHONY: run dev test test-short chaos lint fmt bench bench-health quick-test mint-key emulators-start emulators-stop build clean deploy gateway-spec inference-env test-inference inference-image terraform-providers

run: ## serve every function on 127.0.0.1:$(PORT), embedded store and queue (with the inference worker's environment when it exists; VISGATE_INFERENCE_VENV and VISGATE_TINY_MODELS you set win)
	@user_venv="$${VISGATE_INFERENCE_VENV:-}" user_tiny="$${VISGATE_TINY_MODELS:-}"; \
	if [ -f scripts/inference-env.sh ]; then eval "$$(bash scripts/inference-env.sh --if-present)"; fi; \
	export VISGATE_INFERENCE_VENV="$${user_venv:-$${VISGATE_INFERENCE_VENV:-}}" VISGATE_TINY_MODELS="$${user_tiny:-$${VISGATE_TINY_MODELS:-}}"; \
	$(GO) run ./functions/local

dev: ## the Google Cloud runtime on the Firestore and Cloud Tasks emulators, one base URL on PORT
	bash scripts/dev.sh

build:
	$(GO) build -trimpath -ldflags='-s -w' -o bin/orchestrator ./functions/local

test: ## go vet and every test with -race, emulators started and stopped, then a summary of skips (PKGS=./shared/... for fewer)
	@GO=$(GO) bash scripts/test.sh $(PKGS)

test-short:
	$(GO) test -count=1 -short ./...

SEED ?= 1
N ?= 50
chaos: ## the chaos property test over N seeded schedules from SEED (make test runs a few fixed seeds)
	CHAOS_SEED=$(SEED) CHAOS_N=$(N) $(GO) test -race -count=1 -timeout 0 -run 'TestChaosProperty$$' ./functions/provision/

lint: ## gofmt, go vet, go.mod tidy, staticcheck, import grouping, terraform fmt, the OpenAPI document (Redocly, a generated Python client)
	@unformatted=$$(gofmt -l . | grep -v '^tools/' || true); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags terraformreal .
	$(GO) mod tidy -diff
	$(GO) build -C tools/lint -o $(CURDIR)/bin/staticcheck honnef.co/go/tools/cmd/staticcheck
	bin/staticcheck ./...
	$(GO) run ./scripts/importgroups
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; else echo "terraform not installed: skipping terraform fmt"; fi
	bash scripts/openapi-lint.sh
	bash scripts/openapi-client-check.sh

fmt:
	gofmt -w $$(git ls-files '*.go')
	@if command -v terraform >/dev/null; then terraform fmt -recursive terraform; fi

bench: ## the performance figures against their targets, loopback only, under 10 minutes; writes BENCHMARKS.md (docs/development.md, "Performance")
	$(GO) run ./scripts/bench

bench-health: ## GET /health latency from a second process on loopback (budget: p99 < 10 ms)
	bash scripts/bench-health.sh

quick-test: ## the quick test against a running server (BASE, KEY, WEBHOOK_URL)
	bash scripts/quick-test.sh

mint-key: ## mint an API key (OWNER=name to choose its owner id): prints it once, with the owner:hash line for API_KEY_HASHES
	$(GO) run ./scripts/mintkey $(if $(OWNER),-owner '$(OWNER)')

emulators-start:
	bash scripts/firestore-emulator.sh start
	bash scripts/cloudtasks-emulator.sh start

emulators-stop:
	-bash scripts/cloudtasks-emulator.sh stop
	-bash scripts/firestore-emulator.sh stop

inference-env: ## the inference worker's Python env, once per lock, shared by clones; prints the exports (eval it)
	@bash scripts/inference-env.sh

test-inference: ## ruff and pytest for inference/ in that env (creates it first if needed)
	@eval "$$(bash scripts/inference-env.sh)" && cd inference && \
		"$$VISGATE_INFERENCE_VENV/bin/ruff" check . && \
		"$$VISGATE_INFERENCE_VENV/bin/ruff" format --check . && \
		"$$VISGATE_INFERENCE_VENV/bin/python" -m pytest

terraform-providers: ## the providers terraform/versions.tf pins, as a filesystem mirror in the user's cache, once per set of versions (needs registry.terraform.io once); prints the export (eval it)
	@bash scripts/terraform-providers.sh

inference-image: ## the worker's image from the same lock (docker, else buildah as root), once per content; prints the exports (INFERENCE_IMAGE_TAG=name:tag tags it too)
	@bash scripts/inference-image.sh

deploy: ## terraform apply in terraform/ (see docs/cloud.md)
	bash scripts/deploy.sh

gateway-spec: ## regenerate terraform/gateway-openapi.json.tftpl (API Gateway routes) from api.Routes()
	$(GO) run ./scripts/gatewayspec

clean:
	rm -rf bin .data .emulators artifacts
