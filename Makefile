# actorim: `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
GOBIN ?= $(shell $(GO) env GOPATH)/bin
PROTOC_GEN_GO_VERSION := v1.36.12
VTPROTO_VERSION       := v0.6.0
PROTOS := protos/clientpb/client.proto protos/actorpb/actor.proto protos/actorpb/social.proto protos/storepb/store.proto

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## run a standalone node on 127.0.0.1:8080 with its data in ./data
	$(GO) run ./cmd/imnode $(ARGS)

.PHONY: build
build: ## build imnode, imctl and imbench into ./bin
	$(GO) build -o bin/ ./cmd/...

.PHONY: deps
deps: ## install the servers the tests need: redis-server, clickhouse and chromium (apt), consul and SeaweedFS (built at once, cached in ~/.cache/actorim)
	deploy/local/redis.sh install
	deploy/local/clickhouse.sh install
	deploy/local/chromium.sh install
	@# The two Go builds run side by side; either failing fails deps.
	@deploy/local/consul.sh install & consul=$$!; deploy/local/s3.sh install & s3=$$!; ok=true; \
		wait $$consul || { echo "deps: consul.sh install failed" >&2; ok=false; }; \
		wait $$s3 || { echo "deps: s3.sh install failed" >&2; ok=false; }; \
		$$ok

.PHONY: test
test: deps ## run the whole test suite (vet, race detector, fuzz seed corpus, end-to-end, cluster with real Consul and Redis, the TypeScript SDK against a real node, browser tests in headless Chromium)
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) sdk-test
	$(MAKE) web-test

# The unit tier: every package's own tests that need no external server.
# Every package is in it except these:
#   e2e                     end to end, against imnode children, Consul, Redis and ClickHouse
#   persistence/redis       against a redis-server it starts
#   persistence/clickhouse  against a clickhouse-server it starts
#   persistence/objects/s3  against a SeaweedFS it starts
UNIT_EXCLUDE := actorim/e2e actorim/persistence/redis actorim/persistence/clickhouse actorim/persistence/objects/s3

.PHONY: test-unit
test-unit: ## the unit tier: every package's own tests that need no server (no Redis, ClickHouse, Consul, e2e), about 40 s; RACE=1 adds -race
	$(GO) test -count=1 $(if $(RACE),-race) $$($(GO) list ./... | grep -vxF $(addprefix -e ,$(UNIT_EXCLUDE)))

.PHONY: cluster
cluster: ## start a local 3-node cluster with Consul and Redis on loopback, nodes over mutual TLS (cluster-stop stops it)
	deploy/local/cluster.sh start 3

.PHONY: cluster-stop
cluster-stop: ## stop the local cluster
	deploy/local/cluster.sh stop

.PHONY: bench
bench: ## a short standard imbench suite against fresh nodes, one table (full suite: deploy/local/bench-suite.sh)
	RUNS=$(or $(RUNS),1) DURATION=$(or $(DURATION),5s) deploy/local/bench-suite.sh

.PHONY: fuzz
fuzz: ## fuzz the frame decoder for FUZZTIME (default 60s)
	$(GO) test -run '^$$' -fuzz FuzzDecodeFrame -fuzztime $(or $(FUZZTIME),60s) ./wire/

.PHONY: fuzz-conn
fuzz-conn: ## fuzz whole connections (frame sequences after login) against a node for FUZZTIME (default 60s)
	$(GO) test -run '^$$' -fuzz FuzzConnection -fuzztime $(or $(FUZZTIME),60s) ./e2e/

.PHONY: proto
proto: ## regenerate the Go code of protos/*.proto (installs protoc and the Go plugins when missing)
	@command -v protoc >/dev/null || { echo "installing protobuf-compiler"; sudo_=$$(command -v sudo || true); $$sudo_ apt-get install -y protobuf-compiler; }
	@test -x $(GOBIN)/protoc-gen-go || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@test -x $(GOBIN)/protoc-gen-go-vtproto || $(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$(VTPROTO_VERSION)
	PATH="$(GOBIN):$$PATH" protoc -I protos --go_out=. --go_opt=module=actorim \
		--go-vtproto_out=. --go-vtproto_opt=module=actorim,features=marshal+unmarshal+size $(PROTOS)
	@# The TypeScript SDK's wire types (ts-proto), committed under sdk/js/src/gen.
	@test -x sdk/js/node_modules/.bin/protoc-gen-ts_proto || (cd sdk/js && npm ci)
	cd sdk/js && npm run gen

.PHONY: sdk-test
sdk-test: ## build imnode and run the TypeScript SDK's tests (sdk/js) against it
	deploy/local/node.sh check
	$(GO) build -o bin/imnode ./cmd/imnode
	cd sdk/js && npm ci && npm run build && IMNODE_BIN=$(CURDIR)/bin/imnode npm test

.PHONY: sdk-checker
sdk-checker: ## the TypeScript SDK's checker run: 200 connections for 60 s against a real node restarted half-way; no loss, duplicate or reordering (PAIRS, DURATION, RATE)
	$(GO) build -o bin/imnode ./cmd/imnode
	cd sdk/js && npm ci && IMNODE_BIN=$(CURDIR)/bin/imnode npm run checker

.PHONY: web-test
web-test: ## build imnode and run the browser tests (web/) in headless Chromium against it; failures leave screenshots in web/test-artifacts
	deploy/local/node.sh check
	deploy/local/chromium.sh install
	@# web/dist is committed (imnode embeds it): it must be what the sources build.
	cd web && npm ci --no-audit --no-fund && npm run build >/dev/null && \
		{ test -z "$$(git status --porcelain -- dist)" || { git status --short -- dist; echo "web/dist differs from a build of web/src: run npm run build in web/ and commit dist"; exit 1; }; }
	$(GO) build -o bin/imnode ./cmd/imnode
	cd web && IMNODE_BIN=$(CURDIR)/bin/imnode npm test

.PHONY: clean
clean: ## remove build output (not ./data)
	rm -rf bin
