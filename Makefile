# Sluice developer entry points. GNU make; `make help` lists targets.
# CI runs `bash .ci/run`, which is `make test`, as root on a fresh Debian 12.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
BIN      := bin/sluice
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Fuzz budgets are execution counts, not durations: with a duration, Go
# 1.26's fuzz coordinator can report a bare "context deadline exceeded"
# failure when its deadline fires while a worker is mid-input
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZTIME ?= 300000x
UNIT_FUZZTIME ?= 30000x
E2EFLAGS ?= -v

# Everything the e2e suite and `make run` need from Debian. iproute2 gives
# the tests `ss`; nghttp2-client gives h2load; chromium renders the stats page
# in its e2e test; prometheus gives promtool and the Prometheus that the
# monitoring e2e test runs (Debian starts a service: deps stops it);
# libtomcat10-embed-java and default-jdk-headless build the embedded Tomcat
# of the embedded e2e tests; dnsmasq-base is the DNS server of the DNS
# discovery e2e test (the binary alone: the dnsmasq package would also start
# a system service on port 53); wrk and curl are for humans.
APT_PACKAGES := tomcat10 tomcat10-examples libtomcat10-embed-java default-jdk-headless nghttp2-client wrk curl iproute2 chromium prometheus dnsmasq-base
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help deps build test test-unit e2e run fmt vet fuzz clean bench bench-h1 pgo

help: ## List targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# h2spec (HTTP/2 conformance, run by the e2e suite) is a Go program, built
# from the Go module proxy into bin/ like the binary itself.
H2SPEC := bin/h2spec

deps: ## Install Tomcat, h2load, wrk, curl, ss via apt, and bin/h2spec (skipped when present)
	@if [ -x $(H2SPEC) ]; then echo "deps: $(H2SPEC) present"; \
	else echo "deps: installing $(H2SPEC)"; GOBIN=$(CURDIR)/bin $(GO) install github.com/summerwind/h2spec/cmd/h2spec@latest; fi
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all present ($(APT_PACKAGES))"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$(SUDO) apt-get update; \
	$(SUDO) apt-get install -y --no-install-recommends $$missing; \
	if [[ " $$missing " == *" prometheus "* ]] && command -v systemctl >/dev/null && systemctl is-active -q prometheus 2>/dev/null; then \
		echo "deps: stopping the prometheus service Debian started (the e2e suite runs its own)"; \
		$(SUDO) systemctl disable --now prometheus; \
	fi

build: ## Build bin/sluice
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/sluice

test: ## Unit tests, then the end-to-end suite
	$(MAKE) test-unit
	$(MAKE) e2e

test-unit: ## go vet and race-enabled unit tests (everything but e2e)
	$(GO) vet ./...
	@pkgs=$$($(GO) list ./... | grep -v '/e2e$$' || true); \
	if [ -z "$$pkgs" ]; then echo "test-unit: no packages besides e2e yet"; exit 0; fi; \
	echo "$(GO) test -race -count=1 <$$(echo $$pkgs | wc -w) packages>"; \
	$(GO) test -race -count=1 $$pkgs
	@# A short fuzz of every target (PROXY parser, smuggling guard, router,
	@# the h2c frame watchers, the upstream HTTP/2 client and its HPACK
	@# encoder): they parse what clients and servers send. `make fuzz` runs
	@# them longer.
	@for f in $$(grep -rl --include='*_test.go' --exclude-dir=.git --exclude-dir=.run -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort); do \
		for fn in $$(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$$f" | cut -d' ' -f2); do \
			echo "$(GO) test -run '^$$' -fuzz '^$$fn$$' -fuzztime $(UNIT_FUZZTIME) ./$$(dirname $$f)"; \
			$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(UNIT_FUZZTIME) "./$$(dirname $$f)"; \
		done; \
	done

e2e: deps build ## Real Tomcat + bin/sluice end-to-end tests (a few minutes)
	E2E_SLUICE_BIN="$(CURDIR)/$(BIN)" $(GO) test -count=1 -timeout 15m $(E2EFLAGS) ./e2e/...

run: deps build ## Local Tomcat on 18081-18083 plus sluice on :8080 (Ctrl-C stops both)
	scripts/run.sh

bench: deps build ## Sluice vs HAProxy/nginx/Caddy on Tomcat + a Go backend (~20 min; BENCH_QUICK=1 ~6 min)
	e2e/bench/run.sh

bench-h1: deps build ## Sluice's HTTP/1.1 pool vs HAProxy-h1/nginx on Tomcat at maxKeepAliveRequests=100 (~4 min)
	BENCH_BACKENDS=$${BENCH_BACKENDS:-tomcat-h1} BENCH_SCENARIOS="$${BENCH_SCENARIOS:-h1-keepalive h1-close}" \
		BENCH_PEERS="$${BENCH_PEERS:-sluice haproxy-h1 nginx}" BENCH_IDLE=$${BENCH_IDLE:-0} e2e/bench/run.sh

pgo: deps ## Record a CPU profile under bench load (fast backend) into cmd/sluice/default.pgo, which build then uses (~1.5 min)
	GO=$(GO) e2e/bench/pgo.sh

fmt: ## gofmt the tree
	$(GO) fmt ./...

vet: ## go vet
	$(GO) vet ./...

fuzz: ## Run every Fuzz target for FUZZTIME executions (default 300000x) each
	@files=$$(grep -rl --include='*_test.go' --exclude-dir=.git --exclude-dir=.run -E '^func Fuzz[A-Za-z0-9_]*\(' . || true); \
	if [ -z "$$files" ]; then echo "fuzz: no Fuzz targets found"; exit 0; fi; \
	for f in $$files; do \
		for fn in $$(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$$f" | cut -d' ' -f2); do \
			echo "== $$fn ($$(dirname $$f))"; \
			$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) "./$$(dirname $$f)"; \
		done; \
	done

clean: ## Stop the `make run` Tomcat, remove bin/ and .run/
	@if [ -d .run/tomcat ]; then deploy/tomcat/stop.sh .run/tomcat; fi
	rm -rf bin .run
