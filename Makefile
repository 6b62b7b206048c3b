# nodeagent: build, local cluster, tests. See README.md.
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/nodeagent
STATE ?= /var/lib/nodeagent-harness
export NODEAGENT_CACHE := $(CACHE)
export NODEAGENT_STATE := $(STATE)

.PHONY: all build install up down test unit e2e e2e-only vet lint bench conformance soak fuzz

# Build output, and the install layout of `make install`: the kubelet's
# paths. DESTDIR stages the whole tree; PREFIX (or BINDIR) moves the
# binary, and the unit's ExecStart follows it. An installed unit or config
# that differs is kept unless FORCE=1 (which keeps the old one as .bak).
OUT_DIR ?= bin
PREFIX ?= /usr
BINDIR ?= $(PREFIX)/bin
CNI_BIN_DIR ?= /opt/cni/bin
UNITDIR ?= /etc/systemd/system
KUBELET_DIR ?= /var/lib/kubelet
# Commit and build date for `nodeagent --version` (hack/ldflags.sh).
LDFLAGS := $(shell GIT_COMMIT='$(GIT_COMMIT)' BUILD_DATE='$(BUILD_DATE)' hack/ldflags.sh)
GOBUILD := CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)'

all: build

# Static binaries (CGO_ENABLED=0): nodeagent and the CNI plugin
# nodeagent-delegate that containerd runs (cmd/nodeagent-cni).
build:
	$(GOBUILD) -o $(OUT_DIR)/nodeagent ./cmd/nodeagent
	$(GOBUILD) -o $(OUT_DIR)/nodeagent-cni ./cmd/nodeagent-cni

# nodeagent as a host service (README "Install as a service"): the
# binaries, deploy/systemd/nodeagent.service and deploy/systemd/config.yaml
# as $(KUBELET_DIR)/config.yaml if there is none. Starts nothing.
install: build
	DESTDIR='$(DESTDIR)' BINDIR='$(BINDIR)' CNI_BIN_DIR='$(CNI_BIN_DIR)' UNITDIR='$(UNITDIR)' \
	  KUBELET_DIR='$(KUBELET_DIR)' OUT_DIR='$(OUT_DIR)' FORCE='$(FORCE)' hack/install.sh

# Start a local single-node cluster whose node is nodeagent.
up:
	hack/cluster.sh up

down:
	hack/cluster.sh down

vet:
	go vet ./...

# golangci-lint (.golangci.yml), the e2e build tag too; built at the version
# hack/lint/go.mod pins into $(CACHE)/bin on first use (hack/lint.sh).
lint:
	hack/lint.sh

# Unit tests with the race detector, after go vet and the linter (the e2e
# build tag too); then the harness image builder's and pause's (their own
# module).
# As root, the packages some unit tests use (dbus-daemon) are installed first.
unit:
	if [ "$$(id -u)" = 0 ]; then hack/cluster.sh packages; fi
	go vet ./...
	go vet -tags e2e ./test/e2e/
	hack/lint.sh
	go test -race -count=1 ./...
	cd hack/images && go vet ./... && go test -count=1 ./...

# End-to-end tests against a fresh local cluster (root).
e2e:
	FRESH_CLUSTER=1 hack/cluster.sh up
	$(MAKE) e2e-only; rc=$$?; hack/cluster.sh down; exit $$rc

e2e-only:
	go test -tags e2e -count=1 -timeout 40m -v ./test/e2e/ 2>&1 | tee $(STATE)/logs/e2e.log; exit $${PIPESTATUS[0]}

test: unit e2e

# The fault, load and bad-input campaign (root; not part of make test,
# which runs its short slice): SOAK_MINUTES (30) against a fresh local
# cluster, then every fuzz target; writes docs/reliability.md.
soak:
	hack/soak.sh

# Every fuzz target for FUZZ_TIME (60s) each (no root, no cluster).
fuzz:
	hack/fuzz.sh

# Side-by-side benchmark with the upstream kubelet (not part of make test).
bench:
	hack/bench.sh

# Upstream conformance (root; not part of make test): every NodeConformance
# spec one node can serve (LABEL=ginkgo label filter, default
# 'NodeConformance && !Serial && !Disruptive && !Flaky'; FOCUS=regex narrows)
# in PROCS ginkgo processes (default 4) against a fresh local cluster;
# AGENT=kubelet runs them against the upstream kubelet instead. Builds
# e2e.test, agnhost, nonewprivs, their images and the ginkgo CLI; records
# docs/conformance.md.
conformance:
	hack/conformance.sh
