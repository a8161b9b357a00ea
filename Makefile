# dynoscope: make help lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

VERSION := $(shell cat VERSION)
BUILD := build
GO_LDFLAGS := -s -w -X main.version=$(VERSION)
GO_BUILD := CGO_ENABLED=0 go build -trimpath -ldflags '$(GO_LDFLAGS)'
DEMO_SECONDS ?= 40
# Every shell file: lib/*.sh are sourced (no shebang); source= paths are root-relative.
SHELL_FILES := bin/detect bin/compile bin/release lib/output.sh lib/agent.sh lib/launcher.sh \
	buildpack-test/testdata/fake-dynoscope .ci/run $(wildcard scripts/*.sh)

.PHONY: help build test deps lint bench demo buildpack release local-up local-down local-native clean
COMPOSE := docker-compose -p dynoscope -f local/docker-compose.yml

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

build: ## build dynoscope and the demo app into build/
	$(GO_BUILD) -o $(BUILD)/dynoscope ./agent/cmd/dynoscope
	$(GO_BUILD) -o $(BUILD)/demoapp ./local/demoapp

deps: ## install the Debian packages the tests need (or say how)
	@scripts/deps.sh

test: deps ## run every test CI runs
	npm ci --prefix dashboards/logql-check --no-audit --no-fund --loglevel=error
	go vet ./...
	go test -count=1 -timeout 40m ./...

STATICCHECK := go run honnef.co/go/tools/cmd/staticcheck@v0.6.1

lint: deps ## gofmt, go vet, staticcheck, shellcheck and shfmt
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: run gofmt -w on the files above"; exit 1; }
	go vet ./...
	$(STATICCHECK) ./...
	shellcheck --enable=all --external-sources $(SHELL_FILES)
	shfmt --diff $(SHELL_FILES)

bench: build ## Go benchmarks, the launcher's source time, then the agent against Prometheus agent mode
	go test -run '^$$' -bench . -benchmem -count 1 ./agent/internal/...
	scripts/bench-launcher.sh 50
	scripts/bench-passthrough.sh 512
	scripts/bench-agent.sh

demo: build ## the demo app under dynoscope, printing what it would send
	PORT=$${PORT:-5000} ENVIRONMENT=development DYNOSCOPE_APP=demo DYNOSCOPE_DRY_RUN=true \
	DEMO_TRAFFIC=true DYNOSCOPE_SCRAPE_INTERVAL=10s DYNOSCOPE_SOCKET=$(CURDIR)/$(BUILD)/dynoscope.sock \
	timeout --signal=TERM --preserve-status $(DEMO_SECONDS) $(BUILD)/dynoscope run -- $(BUILD)/demoapp

buildpack: ## dist/dynoscope-buildpack-VERSION.tgz: the scripts and static linux agents, no network needed
	scripts/buildpack.sh $(VERSION)

release: ## agents for linux, macOS and Windows in dist/release/, manifest.txt rewritten, the buildpack archive
	scripts/release.sh $(VERSION)

local-up: ## the local stack in Docker: Grafana :3000, Prometheus :9090, Alertmanager :9093, app :5000
	VERSION=$(VERSION) $(COMPOSE) up -d --build
	@echo "Grafana http://localhost:3000  Prometheus http://localhost:9090  Alertmanager http://localhost:9093  app http://localhost:5000"

local-down: ## stop the local stack and delete its data
	$(COMPOSE) down -v

local-native: ## the local stack without Docker (Prometheus and Alertmanager from the PATH)
	scripts/local-native.sh

clean: ## remove build output
	rm -rf $(BUILD) dist
