# bale: `make demo` builds bale and runs pack -> list -> unpack -> verify on the sample registry
# storage in testdata/; `make test` runs every test (the real skopeo and docker-registry are
# needed for the end-to-end tests: apt-get install -y skopeo docker-registry zstd).

GO      ?= go
BALE    := bin/bale
DEMO    := .demo
SAMPLE  := testdata/sample-registry
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build demo test fuzz bench release docs clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BALE) ./cmd/bale

demo: build
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BALE) pack -o $(DEMO)/sample.tar.zst registry:$(SAMPLE)
	$(BALE) list $(DEMO)/sample.tar.zst
	$(BALE) unpack --to registry:$(DEMO)/registry --to dir:$(DEMO)/images $(DEMO)/sample.tar.zst
	$(BALE) verify $(DEMO)/sample.tar.zst
	$(BALE) verify registry:$(DEMO)/registry
	$(BALE) verify dir:$(DEMO)/images
	@echo "demo OK: bundle $(DEMO)/sample.tar.zst, registry storage $(DEMO)/registry, skopeo dir tree $(DEMO)/images"

test:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

# Each fuzz target for FUZZTIME (not part of `make test`).
FUZZTIME ?= 5m
fuzz:
	@for t in $$($(GO) test -list '^Fuzz' ./... | grep '^Fuzz'); do \
		pkg=$$(grep -rl "func $$t(" --include='*_test.go' . | xargs -n1 dirname | head -1); \
		echo "== $$t in $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 50x $$pkg || exit 1; \
	done

# Speed against the reference scripts and tar | zstd (not part of `make test`; see
# docs/performance.md). E.g. make bench BENCHFLAGS="-size large" or BENCHFLAGS="-only pack,unpack".
BENCHFLAGS ?=
bench: build
	$(GO) run ./internal/bench -bale $(BALE) $(BENCHFLAGS)

# Static binaries (no cgo) for linux/amd64 and linux/arm64 in dist/, with their sha256 sums,
# the man page and the shell completions.
release:
	rm -rf dist && mkdir -p dist
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o dist/bale-linux-$$arch ./cmd/bale || exit 1; \
	done
	$(GO) run ./cmd/bale completion man > dist/bale.1
	$(GO) run ./cmd/bale completion bash > dist/bale.bash
	$(GO) run ./cmd/bale completion zsh > dist/_bale
	$(GO) run ./cmd/bale completion fish > dist/bale.fish
	cd dist && sha256sum bale-linux-* > SHA256SUMS
	@ls -l dist

# docs/cli.md and docs/bale.1, generated from the CLI definition.
docs:
	$(GO) run ./cmd/bale completion markdown > docs/cli.md
	$(GO) run ./cmd/bale completion man > docs/bale.1

clean:
	rm -rf bin dist $(DEMO)
