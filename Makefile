# Sluice — everything a fresh Debian 12 machine with the Swift toolchain needs.
#   make run    install what is missing, build, start demo targets and sluiced on etc/sluice/sluice.yaml
#   make test   install what is missing, build, trap lint, run the whole test suite
#   make lint   trap lint over Sources/ (scripts/lint_traps.py; allowlist and open findings in scripts/)
#   make fuzz   build and run every libFuzzer target in Fuzz/ (FUZZ=Name for one, FUZZ_SECONDS each)
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := libssl-dev libnghttp2-dev pkg-config python3 curl socat wrk iperf3 nghttp2-client nginx gcc openssl python3-grpcio etcd-server etcd-client
PREFIX ?= /usr/local
CONFIG ?= etc/sluice/sluice.yaml

.PHONY: deps build release run test test-all lint bench bench-deps install clean fuzz fuzz-ci fuzz-build alloc-budget

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

build: deps
	swift build

release: deps
	swift build -c release

# The example config with its control socket and state file moved under .build/run, so a
# newcomer without root can run it.
run: release
	@mkdir -p .build/run/certs
	@[ -f .build/run/certs/demo.pem ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
		-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout .build/run/certs/demo.key -out .build/run/certs/demo.pem 2>/dev/null
	@sed -e 's#/run/sluice/control.sock#$(CURDIR)/.build/run/control.sock#' \
	     -e 's#/var/lib/sluice/state.json#$(CURDIR)/.build/run/state.json#' $(CONFIG) > .build/run/sluice.yaml
	@set -m; python3 etc/sluice/demo-targets.py 9001 9002 --udp 9101 9102 & demo=$$!; \
	trap "kill $$demo 2>/dev/null" EXIT; \
	echo "try: curl http://127.0.0.1:8080/ (tcp), curl http://127.0.0.1:8081/ (http), curl -k https://127.0.0.1:8443/ (https, h2),"; \
	echo "     echo hi | socat - UDP:127.0.0.1:5353 (udp);"; \
	echo "     .build/release/sluicectl targets list --socket .build/run/control.sock   (Ctrl-C stops)"; \
	.build/release/sluiced --config .build/run/sluice.yaml

# Fails on a trap site (precondition, fatalError, try!, as!, force unwrap, narrowing integer
# conversion) that is neither allowlisted with a reason nor tracked in scripts/trap-findings.md.
lint:
	@python3 scripts/lint_traps.py

# The allocation budget runs first, so the last line is Swift Testing's count of real tests.
test: build lint alloc-budget
	swift test 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

# Benchmarks (Benchmarks/README.md): HAProxy and NGINX beside sluiced on loopback, one report.
#   make bench                                     every scenario (~15 min, needs a quiet machine)
#   make bench SCENARIOS="ka_small rss"            some of them (Benchmarks/run.sh --list)
BENCH_PACKAGES := haproxy nginx libnginx-mod-stream wrk iperf3 curl gcc nghttp2-client openssl libssl-dev
bench-deps:
	@missing=""; for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

bench: release bench-deps
	Benchmarks/run.sh $(SCENARIOS)

# heap allocations per proxied request of sluiced (LD_PRELOAD counter, fixed request counts),
# exit 1 over budget; ~50 s after the release build, cheap enough for CI
alloc-budget: release
	RUN_NAME=alloc-budget Benchmarks/run.sh alloc

# test certificates (CA, RSA and ECDSA leaves, client, strangers) from Tests/Fixtures/make_certs.sh
# into CERTS_DIR, for trying TLS listeners and the fixtures by hand
CERTS_DIR ?= .build/certs
.PHONY: certs
certs:
	@command -v openssl >/dev/null || { echo "openssl missing (make deps)"; exit 1; }
	bash Tests/Fixtures/make_certs.sh $(CERTS_DIR)
	@echo "certificates in $(CERTS_DIR)"

# kept for habit: `make test` already includes the allocation budget
test-all: test

install: release
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/sluice $(DESTDIR)/lib/systemd/system
	install -m 0755 .build/release/sluiced .build/release/sluicectl $(DESTDIR)$(PREFIX)/bin/
	[ -e $(DESTDIR)/etc/sluice/sluice.yaml ] || install -m 0644 etc/sluice/sluice.yaml $(DESTDIR)/etc/sluice/
	install -m 0644 systemd/sluice.service $(DESTDIR)/lib/systemd/system/
	@if [ -z "$(DESTDIR)" ]; then \
		id sluice >/dev/null 2>&1 || $(SUDO) useradd --system --no-create-home --shell /usr/sbin/nologin sluice; \
		command -v systemctl >/dev/null && $(SUDO) systemctl daemon-reload || true; \
		echo "installed: systemctl enable --now sluice"; \
	fi

clean:
	rm -rf .build

# libFuzzer targets: each Fuzz/<Name>/ has FuzzEntry.swift and SOURCES (source dirs/files compiled
# with it into one module, `-path` excludes; optional dict and max_len). Built with
# swiftc -sanitize=fuzzer,address into .build-fuzz/<Name>; crashes land in .build-fuzz/artifacts/<Name>/,
# new inputs in .build-fuzz/corpus/<Name>/. One target runs at a time.
#   make fuzz [FUZZ=Name] [FUZZ_SECONDS=60]   build and run every target (or one)
#   make fuzz-ci [FUZZ_CI_SECONDS=30]         same, shorter; exit 1 if any target crashes
#   make fuzz-build [FUZZ=Name]               build only
FUZZ ?=
FUZZ_SECONDS ?= 60
FUZZ_CI_SECONDS ?= 30
fuzz:
	scripts/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ)

fuzz-ci:
	scripts/fuzz.sh run $(FUZZ_CI_SECONDS) $(FUZZ)

fuzz-build:
	scripts/fuzz.sh build 0 $(FUZZ)
