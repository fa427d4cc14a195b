# ragtune build. Every target that compiles cgo sources goes through
# scripts/env.sh, the one place that sets the cgo flags (see there why).
SHELL := /bin/bash
GO ?= go
ENV := . scripts/env.sh &&

.PHONY: build test demo bench deps fuzz vulkan cuda

build: deps
	$(ENV) $(GO) build -o bin/ragtune ./cli/ragtune

deps:
	@$(GO) mod download

# Optional GPU backend libraries, loaded at run time from bin/lib (built
# from the same ggml sources, cached outside the clone; see scripts/build-backend).
# make cuda CUDA_ARCHITECTURES=90 builds for one card generation only.
vulkan cuda: deps
	CUDA_ARCHITECTURES=$(CUDA_ARCHITECTURES) ./scripts/build-backend $@

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
