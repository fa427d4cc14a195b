# ragtune build. Every target that compiles cgo sources goes through
# scripts/env.sh, the one place that sets the cgo flags (see there why).
SHELL := /bin/bash
GO ?= go
ENV := . scripts/env.sh &&

.PHONY: build test demo bench deps fuzz

build: deps
	$(ENV) $(GO) build -o bin/ragtune ./cli/ragtune

deps:
	@$(GO) mod download

test: build
	./scripts/test-deps
	$(ENV) $(GO) vet ./...
	$(ENV) $(GO) test -timeout 60m ./...

demo: build
	./scripts/demo/run

bench: build
	./scripts/bench

# Short fuzzing pass over every parser (FUZZTIME per target).
FUZZTIME ?= 30s
fuzz: deps
	$(ENV) ./scripts/fuzz $(FUZZTIME)
