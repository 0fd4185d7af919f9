# The two commands of the README, and the tools around them.
#   make run    install what is missing, build, run fedgate on a demo config
#   make check  install what is missing, build normal + ASan/UBSan, run every test
#   make install / make deb  install it as a service, or package it for Debian
BUILD      ?= build
SAN_BUILD  ?= build-san
DOMAIN     ?= localhost
JOBS       ?= $(shell nproc)
SOURCES    := $(wildcard src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h fuzz/*.c fuzz/*.h bench/*.c)

.PHONY: all deps build build-san run check fuzz lint format bench bench-compare clean install deb

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# clang, so that the same build carries the libFuzzer targets.
build-san: deps
	@CC=clang cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug \
		-DFG_SANITIZE=ON -DFG_FUZZ=ON >/dev/null
	@cmake --build $(SAN_BUILD) -j$(JOBS)

# First run: a demo configuration under ./var (fedgate init); later runs
# reuse it. DOMAIN=example.org make run picks the local domain of a new one.
# The first run also makes the control panel's administrator "admin" and
# prints its password once (ADMIN_PASSWORD=... make run sets it instead).
run: build
	@if [ ! -f var/fedgate.conf ]; then \
		$(BUILD)/fedgate init --domain $(DOMAIN) --dir var || exit 1; \
	fi
	@./scripts/first-admin.sh $(BUILD)/fedgate var/fedgate.conf
	exec $(BUILD)/fedgate serve -c var/fedgate.conf

check: deps
	@./scripts/check.sh $(BUILD) $(SAN_BUILD)

# The program in $(PREFIX)/sbin, the man pages, the systemd unit and the
# sysusers.d/tmpfiles.d lines under $(PREFIX), and /etc/fedgate/fedgate.conf
# unless one is there; all below $(DESTDIR) when set (docs/internals.md,
# "Packaging and installation"). Only the program is built for it.
PREFIX  ?= /usr/local
DESTDIR ?=
install: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target fedgate
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# The Debian package, built by dpkg-buildpackage from a copy of the tree;
# the .deb and lintian's verdict land in $(DEB_OUT).
DEB_OUT ?= $(BUILD)/deb
deb:
	@./scripts/build-deb.sh $(DEB_OUT)

# Builds the targets and prints, for each, the command of a 10-minute run
# (docs/internals.md, "Fuzzing"): new inputs go to a scratch folder, the
# seeds in fuzz/corpus/ are only read.
FUZZ_SCRATCH ?= /tmp/fedgate-fuzz
fuzz: build-san
	@echo "10-minute runs (nice, at most one per core); scratch corpora in $(FUZZ_SCRATCH)/:"
	@for src in fuzz/fuzz_*.c; do \
		n=$$(basename $$src .c); d=""; \
		[ -f fuzz/$$n.dict ] && d=" -dict=fuzz/$$n.dict"; \
		echo "mkdir -p $(FUZZ_SCRATCH)/$$n && nice $(SAN_BUILD)/$$n -max_total_time=600 -timeout=30 -rss_limit_mb=2048 -print_final_stats=1$$d $(FUZZ_SCRATCH)/$$n fuzz/corpus/$$n"; \
	done
	@echo "replay one input: $(SAN_BUILD)/fuzz_NAME FILE; shrink a crash: $(SAN_BUILD)/fuzz_NAME -minimize_crash=1 -runs=10000 FILE"

# The layer rule (an include that runs upward or sideways, a circle) and
# the format; either fails the target, naming the file and line.
lint:
	@/usr/bin/python3 scripts/lint-layers.py .
	@clang-format --dry-run --Werror $(SOURCES)
	@echo "lint: $(words $(SOURCES)) files formatted as .clang-format says"

format:
	@clang-format -i $(SOURCES)

# bench_xmlstream, bench_jid, idle sessions, TLS resumption, cross-node
# messages/s beside same-node and single-node (bench/cross_node.py), then the
# flood: a client that never reads, 400,000 messages of 1 KB sent to it,
# [limits] output_queue and [timeouts] stalled_output at their defaults;
# prints fedgate's RSS before, at peak and after (in a network namespace);
# last, the side-by-side comparison (bench-compare below).
bench: build
	@$(BUILD)/bench_xmlstream
	@$(BUILD)/bench_jid
	@FEDGATE=$(CURDIR)/$(BUILD)/fedgate FG_IDLE_N=$${FG_IDLE_N:-2000} tests/e2e/netns.sh \
		/usr/bin/python3 bench/idle_sessions.py
	@FEDGATE=$(CURDIR)/$(BUILD)/fedgate tests/e2e/netns.sh /usr/bin/python3 bench/tls_resume.py
	@FEDGATE=$(CURDIR)/$(BUILD)/fedgate FG_BENCH_LOAD=$(CURDIR)/$(BUILD)/bench_load \
		tests/e2e/netns.sh /usr/bin/python3 bench/cross_node.py
	@FEDGATE=$(CURDIR)/$(BUILD)/fedgate FG_TESTDATA=$(CURDIR)/tests/data FG_FLOOD_N=400000 \
		FG_STALL_S=60 tests/e2e/netns.sh /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
		tests/e2e/test_backpressure.py -k never_reads | grep -E "RSS|passed|failed"
	@/usr/bin/python3 bench/compare.py $(COMPARE)

# fedgate beside Prosody and ejabberd from Debian under the same load
# (docs/benchmarks.md), alone: about 20 minutes; COMPARE="--quick" takes
# about one, and COMPARE="--fedgate before=OLD/fedgate --fedgate
# after=build/fedgate" puts two builds side by side.
COMPARE ?=
bench-compare: build
	@/usr/bin/python3 bench/compare.py $(COMPARE)

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
