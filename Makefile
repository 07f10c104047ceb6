# zkbank build, test and tooling. Everything the project needs is installed
# from here: Go modules through go.mod, ZooKeeper from Debian's package.

GO       ?= go
FUZZTIME ?= 60s
ZK_JAR   := /usr/share/java/zookeeper.jar

.PHONY: all build run test test-faults test-partitions bench-lab lint bench-check race long fuzz bench zookeeper test-tools clean

all: build

## build: compile every command into bin/
build:
	@mkdir -p bin
	$(GO) build ./...
	@if [ -n "$$($(GO) list ./cmd/... 2>/dev/null)" ]; then $(GO) build -o bin/ ./cmd/...; fi

## run: build, then run a local cluster (3 ZooKeeper + 3 bankd) in ./zkbank-dev until Ctrl-C
run: build zookeeper
	bin/bankctl dev up $(RUNFLAGS)

## test: lint, the benchmarks' smoke run and every test with the race detector (real ZooKeeper included), side by side
test: zookeeper test-tools
	@$(MAKE) --no-print-directory -j3 lint bench-check race long

## race: every test with the race detector
race:
	$(GO) test -race -count=1 -p 3 -timeout 20m ./...

## long: the tests too slow for the race detector at full size, without it (a key retried a million commands later)
long:
	$(GO) test -count=1 -run 'TestAKeyOutlivesAMillionCommands' ./cmd/bankd/internal/systest

## bench-check: every benchmark of the storage packages runs once, so make bench cannot rot
bench-check:
	$(GO) test -count=1 -short -run '^$$' -bench . -benchtime 1x ./engine/... ./journal/... ./keystore/... ./snapshot/... ./seal/... ./history/... >/dev/null

## test-faults: the fault-tolerance suite alone, for FAULTS_DURATION (default 5m)
FAULTS_DURATION ?= 5m
test-faults: zookeeper
	$(GO) test -count=1 -v -timeout 2h -run TestBankUnderFaults ./cmd/internal/faults -args -faults.duration=$(FAULTS_DURATION) $(FAULTS_FLAGS)

## test-partitions: the bank in a network lab under partitions, for DURATION past one round of every kind (default 10m); needs root
DURATION ?= 10m
test-partitions: zookeeper test-tools
	$(GO) test -count=1 -v -timeout 3h -run TestBankUnderPartitions ./cmd/internal/faults -args -partitions.duration=$(DURATION) $(FAULTS_FLAGS)

## lint: formatting, vet, and the engine's purity check
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -run TestEngineImportsNothingImpure ./engine

## fuzz: run every fuzz target of every package for FUZZTIME each (default 60s)
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## bench: print the benchmark figures recorded in docs/benchmarks.md
bench: zookeeper
	$(GO) test -run '^$$' -bench ApplyTransfers -benchtime 2000000x ./engine
	$(GO) test -run '^$$' -bench ApplyTransfers -benchtime 2000000x ./keystore
	$(GO) test -run '^$$' -bench DiskPerKey -benchtime 1000000x ./keystore
	$(GO) test -run '^$$' -bench StatementPage -benchtime 2000x ./history
	$(GO) test -run '^$$' -bench 'Add$$' -benchtime 300000x ./history
	$(GO) test -run '^$$' -bench ApplyHolds -benchtime 2000000x ./engine
	$(GO) test -run '^$$' -bench DecodeEntry ./engine
	$(GO) test -run '^$$' -bench MillionAccountsHeap -benchtime 1x ./engine
	$(GO) test -run '^$$' -bench Append -benchtime 2000x ./journal
	$(GO) test -run '^$$' -bench Replay -benchtime 2000000x ./journal
	$(GO) test -run '^$$' -bench MillionAccounts -benchtime 3x ./snapshot
	$(GO) test -run '^$$' -bench Backup -benchtime 20x ./seal
	$(GO) test -run '^$$' -bench LogThroughput -benchtime 1x ./zkcoord
	$(MAKE) build
	bin/bankctl bench $(BENCHFLAGS)

## bench-lab: write throughput and p99 across the network lab's hosts, with no delay and with 50 ms between them (needs root)
bench-lab: zookeeper test-tools
	$(GO) test -count=1 -run '^$$' -bench BenchmarkLabWrites -benchtime 1x ./cmd/internal/faults | grep -E 'between hosts|^ok|FAIL'

## zookeeper: install Debian's zookeeper package when it is missing
zookeeper:
	@if [ ! -f $(ZK_JAR) ]; then \
		echo "ZooKeeper not found; installing Debian's zookeeper package"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q zookeeper; \
	fi

## test-tools: install iproute2 and nftables (the network lab's hosts and partitions), systemd (systemd-analyze checks deploy/'s units) and curl (docs/deployment.md uses it) when missing
test-tools:
	@missing=""; PATH="$$PATH:/usr/sbin:/sbin"; command -v ip >/dev/null || missing="$$missing iproute2"; command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; command -v curl >/dev/null || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing for the tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

clean:
	rm -rf bin
