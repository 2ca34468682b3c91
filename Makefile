# zdt: the two set-up commands of the README are `make lab` and `make test`.

GO      ?= go
BIN     := bin/zdt
LABDIR  ?=

.PHONY: all build deps lab test check unit bench fuzz clean

# Debian packages the lab and the tests use: libvirtd (the guests'
# hypervisors, run with libvirt's test driver), PostgreSQL (the replicated
# group), FRR (the upstream router of the BGP tests), iproute2 (their
# network namespaces) and Prometheus (promtool checks monitoring/, and the
# alert tests run a Prometheus server). Installed when missing and run as
# root; otherwise it says what to install.
DEBS_NEEDED = $(strip \
  $(if $(wildcard /usr/sbin/libvirtd),,libvirt-daemon) \
  $(if $(wildcard /usr/bin/chromium),,chromium) \
  $(if $(wildcard /usr/lib/postgresql/*/bin/postgres),,postgresql) \
  $(if $(wildcard /usr/lib/frr/bgpd),,frr) \
  $(if $(wildcard /usr/sbin/ip /sbin/ip /usr/bin/ip),,iproute2) \
  $(if $(wildcard /usr/bin/promtool),,prometheus))

all: build

build:
	$(GO) build -o $(BIN) ./cmd/zdt

deps:
	@if [ -n "$(DEBS_NEEDED)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEBS_NEEDED); \
	  else \
	    echo "missing Debian packages: $(DEBS_NEEDED)"; \
	    echo "install them with: sudo apt-get install -y --no-install-recommends $(DEBS_NEEDED)"; exit 1; \
	  fi; \
	fi

# The three-site lab on this machine: three controllers, each with its own
# etcd member, on 127.0.0.11-13. Ctrl-C stops it. LABDIR=dir keeps its files.
lab: deps build
	$(BIN) lab $(if $(LABDIR),--dir $(LABDIR))

# Everything CI runs: formatting, vet, and every test with the race detector.
test: deps check
	$(GO) test -race -count=1 -timeout 30m ./...

check:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

# Quick tests only: pure logic, no three-site lab.
unit:
	$(GO) test -race -short ./...

# The benchmarks: failover and self-fence (20 fresh clusters each), the
# placement solver, starting 100 guests through libvirt.
bench: deps
	$(GO) test -run NONE -bench . -benchtime 20x ./cmd/zdt/internal/controller/
	$(GO) test -run NONE -bench Solve -benchtime 20x ./deploy/
	$(GO) test -run NONE -bench Start100 -benchtime 20x ./deploy/hypervisor/
	$(GO) test -run NONE -bench BGPMoveOne -benchtime 20x ./e2e/
	$(GO) test -run NONE -bench BGPMoveAll -benchtime 3x -timeout 30m ./e2e/
	$(GO) test -run NONE -bench . -benchtime 5x ./replication/postgres/
	$(GO) test -run NONE -bench Promotion -benchtime 3x ./replication/reconciler/

fuzz:
	$(GO) test -run NONE -fuzz FuzzParse -fuzztime 60s ./site/config/

clean:
	rm -rf bin
