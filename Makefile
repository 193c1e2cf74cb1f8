# mtproxy-go. `make run` starts a proxy, `make test` runs the test suite.

GO       ?= go
ARGS     ?=
FUZZTIME ?= 30s
FUZZKEEP ?= 20
PKGS     := ./...

.PHONY: build run test bench bench-cipher soak fuzz lint clean

build:
	$(GO) build -o bin/mtproxy ./cmd/mtproxy

# A direct-mode proxy on 0.0.0.0:8443 against Telegram's DCs, with a fresh
# secret; it prints the tg:// links. Extra flags: make run ARGS="-S … -v".
run: build
	./bin/mtproxy $(ARGS)

test: lint
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	GOARCH=arm64 $(GO) build ./...

# The benchmark rig (benchmarks/README.md) against our proxy only, sized for
# 2 cores and under three minutes; prints the table and writes
# benchmarks/results/. Our proxy runs twice per scenario, 4 s each: in
# direct mode against the fake DC, and in middle-proxy mode against the fake
# middle proxy (its rows carry the ratio to direct mode).
# Fake TLS fronts to 127.0.0.1:9 (closed): the start-up probe fails at once
# and nothing leaves the machine.
# More proxies or other sizes: make bench BENCH_ARGS="-proxy '…' -duration 10s".
BENCH_ARGS ?=
BENCH_OURS = ./bin/mtproxy -H {port} --address 127.0.0.1 -S {secret} -M {workers} -D {domain} --allow-classic --fronting 127.0.0.1:9
bench: build
	$(GO) build -o bin/mtproxy-bench ./benchmarks/cmd/mtproxy-bench
	./bin/mtproxy-bench compare -out benchmarks/results -secrets classic,dd,ee -duration 4s \
		-proxy 'name=mtproxy-go;kinds=classic,dd,ee;cmd=$(BENCH_OURS) --dc 1={dc_addr} --dc 2={dc_addr} --dc 3={dc_addr} --dc 4={dc_addr} --dc 5={dc_addr}' \
		-proxy 'name=mtproxy-go middle;kinds=classic,dd,ee;backend=middle;cmd=$(BENCH_OURS) -P 0123456789abcdeffedcba9876543210 --aes-pwd {proxy_secret} {proxy_multi_conf}' \
		$(BENCH_ARGS)

# The soak (benchmarks/README.md, "Soak"): bin/mtproxy as a process of its
# own, in direct and then middle-proxy mode, against 10,000 slowloris
# connections (10 s handshake timeout), 10,000 garbage connections, 10,000
# handshakes reset at once and 1,000,000 short sessions with a verified
# echo each; after every phase the proxy must return to its baseline (fds
# exactly, RSS within 64 MiB). Exit status 1 on any failure. About 4
# minutes on 2 cores (each short phase is bounded by -max-duration, 15m);
# writes benchmarks/results/soak.{txt,json} and the proxy logs.
# Other sizes: make soak SOAK_ARGS="-short 200000 -modes direct".
SOAK_ARGS ?=
soak: build
	$(GO) build -o bin/mtproxy-bench ./benchmarks/cmd/mtproxy-bench
	./bin/mtproxy-bench soak -proxy bin/mtproxy -out benchmarks/results $(SOAK_ARGS)

# The Go microbenchmarks of every package.
bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

# AES-CTR throughput of every tier this CPU supports against crypto/cipher,
# as Markdown tables (about half a minute). Local directory mode, so that
# the test's output is printed.
bench-cipher:
	$(GO) -C cipher test -run='^TestBenchTable$$' -count=1 -benchtime=100ms -args -benchtable

# Runs every fuzz target for FUZZTIME each, then keeps up to FUZZKEEP of
# the inputs it found interesting (the smallest) under the package's
# testdata/fuzz, where every later go test runs them as seeds.
fuzz:
	@set -e; cache=$$($(GO) env GOCACHE)/fuzz; \
	for pkg in $$($(GO) list $(PKGS)); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg; \
			found=$$cache/$$pkg/$$target; \
			if [ -d "$$found" ]; then \
				mkdir -p "$$dir/testdata/fuzz/$$target"; \
				for f in $$(ls -Sr "$$found" | head -n $(FUZZKEEP)); do \
					cp -n "$$found/$$f" "$$dir/testdata/fuzz/$$target/"; \
				done; \
			fi; \
		done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@# The Dockerfile, with BuildKit's own linter (its own module: .ci/dockerlint).
	cd .ci/dockerlint && $(GO) vet ./... && $(GO) test -count=1 ./... && $(GO) run . ../../Dockerfile

clean:
	rm -rf bin
