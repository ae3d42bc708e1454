# ctsync. `make test` and `make demo` set up what they need (as root on
# Debian) and run; see README.md.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -euc
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

# The Go toolchain from go.dev and the sbin tools (ip, conntrack, nft) even
# from a non-login shell. A Go already in PATH comes first.
export PATH := $(PATH):/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin

GO       ?= go
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME ?= 100000x

.PHONY: build deps lint unit unit-32bit fuzz test demo demo-table bench clean

## build: bin/ctsync, stamped with `git describe` and the commit
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ctsync ./cmd/ctsync

## deps: install the system tools tests and demo need (root, Debian; idempotent)
deps:
	@scripts/deps.sh

## lint: gofmt, go vet, staticcheck (pinned in go.mod), go.mod tidy
lint:
	@unformatted=$$(gofmt -l .); \
	if [[ -n $$unformatted ]]; then echo "gofmt: these files need 'gofmt -w':"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }

## unit: every Go test with the race detector, the privileged kernel tier
## included. The e2e package alone runs about 7 minutes on an idle 2-core
## machine; go test's default 10-minute limit per package would turn a
## loaded machine into a false failure, so the limit is 30 minutes.
unit:
	$(GO) test -race -count=1 -timeout 30m ./...

## unit-32bit: the sync, cache, flow and config tests built for 32-bit ARM
## (int is 32 bits: lengths off the wire, 64-bit atomics), run under qemu-arm
## (scripts/deps.sh installs it). Not 386: this machine's kernel runs no
## i386 code, and under qemu-i386 the Go runtime dies on the first signal.
## TestHealthyWhilePeerRejoins is left out: it needs a 20,000-flow snapshot
## within 5 digest periods (0.5 s), which emulated (software AES) sometimes
## takes longer.
unit-32bit:
	GOARCH=arm GOARM=7 $(GO) test -exec qemu-arm -count=1 \
		-skip '^TestHealthyWhilePeerRejoins$$' ./sync/ ./cache/ ./flow/ ./config/

## fuzz: each Fuzz* target in the tree for FUZZTIME executions (default 100000x)
fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

## test: what CI runs: deps, lint, all tests (and some on 32-bit), a short fuzz run
test: deps
	@$(MAKE) lint
	@$(MAKE) unit
	@$(MAKE) unit-32bit
	@$(MAKE) fuzz

## demo: a firewall pair in namespaces (SNAT, strict ruleset, keepalived):
## long-lived TCP connections through a killed master, ctsync (hot, commit)
## and conntrackd (primary-backup.sh) under the fast and the default
## keepalived profile, 100k background flows, and a table (2-3 min, root).
## One run instead: e.g. DEMO_FLAGS="-profile fast -mode hot -reset"
DEMO_FLAGS ?= -compare
demo: deps
	@$(MAKE) build
	@$(GO) run ./test/demo -bin $(CURDIR)/bin/ctsync $(DEMO_FLAGS)

## demo-table: a tour of `ctsync table` in a throw-away namespace (root)
demo-table: deps
	@$(MAKE) build
	@scripts/demo-table.sh

## bench: kernel benchmarks (root)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./kernel/

## clean: remove build output
clean:
	rm -rf bin/ dist/

# --- Packaging (not part of `make test`) -------------------------------------
.PHONY: deb deb-check

DEB_VERSION = $(shell packaging/deb-version.sh)
DEB_ARCH    = $(shell $(GO) env GOARCH)

## deb: Debian package dist/ctsync_VERSION_ARCH.deb (nfpm, pinned in go.mod's tool block)
deb: build
	@rm -rf dist/stage dist/man dist/ctsync_*.deb
	@mkdir -p dist/stage/completion dist/man
	bin/ctsync config default > dist/stage/ctsync.yaml
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) bin/ctsync gen-docs --man dist/man
	gzip -9nf dist/man/*.8 dist/man/*.5
	GO='$(GO)' packaging/copyright.sh bin/ctsync > dist/stage/copyright
	packaging/changelog.sh '$(DEB_VERSION)' | gzip -9n > dist/stage/changelog.gz
	bin/ctsync completion bash > dist/stage/completion/ctsync.bash
	bin/ctsync completion zsh > dist/stage/completion/_ctsync
	bin/ctsync completion fish > dist/stage/completion/ctsync.fish
	CTSYNC_DEB_VERSION='$(DEB_VERSION)' CTSYNC_DEB_ARCH='$(DEB_ARCH)' \
		$(GO) tool nfpm package --config packaging/nfpm.yaml --packager deb \
		--target 'dist/ctsync_$(DEB_VERSION)_$(DEB_ARCH).deb'

## deb-check: build the package and inspect it (contents, control, unit); installs nothing
deb-check: deb
	@packaging/deb-check.sh dist/ctsync_*_$(DEB_ARCH).deb
