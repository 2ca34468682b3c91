# zdt: the two set-up commands of the README are `make lab` and `make test`.

GO      ?= go
BIN     := bin/zdt
LABDIR  ?=

.PHONY: all build lab test check unit bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/zdt

# The three-site lab on this machine: three controllers, each with its own
# etcd member, on 127.0.0.11-13. Ctrl-C stops it. LABDIR=dir keeps its files.
lab: build
	$(BIN) lab $(if $(LABDIR),--dir $(LABDIR))

# Everything CI runs: formatting, vet, and every test with the race detector.
test: check
	$(GO) test -race -count=1 -timeout 30m ./...

check:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

# Quick tests only: pure logic, no three-site lab.
unit:
	$(GO) test -race -short ./...

# The failover and self-fence benchmarks (20 fresh clusters each).
bench:
	$(GO) test -run NONE -bench . -benchtime 20x ./cmd/zdt/internal/controller/

fuzz:
	$(GO) test -run NONE -fuzz FuzzParse -fuzztime 60s ./site/config/

clean:
	rm -rf bin
