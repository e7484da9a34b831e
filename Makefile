# dubbo-admin: leader-elected runtime.
GO      ?= go
BIN     ?= bin/dubbo-admin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/apache/dubbo-admin/app.Version=$(VERSION)

.PHONY: all build run test test-e2e bench lint fmt tidy clean

all: lint test

build: ## Build the dubbo-admin binary into bin/ (-trimpath: no source paths in the binary).
	@[ -x $(BIN) ] || echo "compiling $(BIN): the first build compiles every dependency and takes a minute or two..."
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./app/dubbo-admin

run: build ## Start 3 replicas on the embedded defaults (SQLite under ./data, examples/).
	./$(BIN) run --replicas 3

test: ## Quick profile: unit and conformance suites, race detector on.
	./scripts/test.sh quick

test-e2e: ## The e2e-labelled specs only (multi-process and fault-injection suites); make test runs the rest.
	./scripts/test.sh e2e

bench: ## Benchmarks; writes BENCHMARKS.md.
	./scripts/bench.sh

lint: ## gofmt and go vet.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin data
