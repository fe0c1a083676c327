# rwsplit build. `make` builds the preload library and the CLI; `make test` installs what is
# missing, builds, and runs the unit and integration tests; `make demo` runs the example job.

SHELL   := /bin/bash
CC      ?= cc
PREFIX  ?= /usr/local
BUILD   := build
PKGS    := libcurl libxml-2.0 libcrypto inih

CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
           -MMD -MP -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -ldl
# SAN=address,undefined or SAN=thread: a sanitizer build (see `make asan`, `make tsan`).
SAN     ?=
ifneq ($(SAN),)
override CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
endif
# What every preloaded process loads: no libcurl or libxml2 (and their dependencies), which
# cost ~15 ms per process; the object-store client is a second library loaded on first use.
PRELOAD_LDLIBS := $(shell pkg-config --libs inih 2>/dev/null) -lpthread -ldl
S3_LDLIBS      := $(shell pkg-config --libs libcurl libxml-2.0 libcrypto 2>/dev/null) -lpthread

# The modules below preload/ know nothing of interposition; the CLI and the unit tests link
# the same objects through one static archive.
# The write routes' engine runs in `rwsplit agent --tree` only, never in a preloaded process.
ENGINE_SRC  := uploader/up_engine.c uploader/up_journal.c uploader/up_put.c uploader/up_reconcile.c
LIGHT_SRC   := $(filter-out $(ENGINE_SRC),$(wildcard common/*.c config/*.c router/*.c reader/*.c \
               uploader/*.c)) s3/s3_dl.c
S3_SRC      := $(filter-out s3/s3_dso.c s3/s3_dl.c,$(wildcard s3/*.c))
CORE_SRC    := $(LIGHT_SRC) $(ENGINE_SRC) $(S3_SRC)
PRELOAD_SRC := $(wildcard preload/*.c)
CLI_SRC     := $(wildcard cli/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
TOOL_SRC    := $(wildcard tests/tools/*.c)
SHIM_SRC    := $(wildcard tests/shims/*.c)
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
# Test programs linked statically, without rwsplit code: LD_PRELOAD does not reach them.
STATIC_SRC  := $(wildcard tests/static/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

CORE_A  := $(BUILD)/lib/librwsplit_core.a
LIB     := $(BUILD)/lib/librwsplit.so
S3LIB   := $(BUILD)/lib/librwsplit-s3.so
CLI     := $(BUILD)/bin/rwsplit
UNITS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOLS   := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(TOOL_SRC))
SHIMS   := $(patsubst tests/shims/%.c,$(BUILD)/tests/lib%.so,$(SHIM_SRC))
STATICS := $(patsubst tests/static/%.c,$(BUILD)/tests/%,$(STATIC_SRC))
FUZZERS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
VENV    := .tools/venv

.PHONY: all deps test unit integration test-tools demo install clean lint asan tsan fuzz stress
all: $(LIB) $(S3LIB) $(CLI)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(CORE_A): $(call obj,$(CORE_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIB): $(call obj,$(PRELOAD_SRC) $(LIGHT_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^ $(PRELOAD_LDLIBS)

$(S3LIB): $(call obj,$(S3_SRC) s3/s3_dso.c common/log.c common/sb.c common/fs.c common/sha256.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^ $(S3_LDLIBS)

$(CLI): $(call obj,$(CLI_SRC)) $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(call obj,$(CLI_SRC)) $(CORE_A) $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(CORE_A) $(LDLIBS) $(shell pkg-config --libs check)

$(BUILD)/tests/%: $(BUILD)/obj/tests/tools/%.o $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(CORE_A) $(LDLIBS)

# libFuzzer targets (make fuzz builds them with clang).
$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(CORE_A) $(LDLIBS)

# Fault-injection libraries the integration tests preload after librwsplit.so.
$(BUILD)/tests/lib%.so: $(BUILD)/obj/tests/shims/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $< -ldl

$(BUILD)/tests/%: tests/static/%.c
	@mkdir -p $(dir $@)
	$(CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

deps:
	@scripts/deps.sh

# Unit tests find their data relative to the repository root.
unit: $(UNITS)
	@set -e; for t in $(UNITS); do echo "== $$t"; CK_FORK=yes $$t; done

# What the integration tests run besides the library and CLI (s3op, the fault shims, ...).
test-tools: all $(TOOLS) $(SHIMS) $(STATICS)

integration: test-tools
	$(VENV)/bin/python -m pytest -q tests/integration

test: deps
	$(MAKE) all
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) asan
	$(MAKE) tsan
	$(MAKE) fuzz

# Sanitizer runs: the library, CLI, unit tests and test tools built with ASan+UBSan (or
# TSan) in their own build directory; the unit tests, then the integration tests that
# exercise threads, fork workers, renames and the agents (SAN_TESTS). Preloaded programs
# are not instrumented, so the sanitizer's runtime is preloaded before librwsplit.so
# (RWSPLIT_SANITIZER_PRELOAD, read by tests/harness/proc.py); leak checks are left to the
# unit tests (the programs we preload are not ours).
SAN_TESTS := tests/integration/test_agent.py \
	tests/integration/test_read_routes.py::test_threads_pread_same_lazy_file \
	tests/integration/test_read_routes.py::test_multiprocessing_pool \
	tests/integration/test_read_routes.py::test_python_seek_read_random_offsets \
	tests/integration/test_read_routes.py::test_cat_every_file \
	tests/integration/test_write_tree.py::test_eight_writers_rename_in_one_directory \
	tests/integration/test_write_tree.py::test_multipart_file_through_lost_responses \
	tests/integration/test_write_routes.py::test_threads_write_many_files \
	tests/integration/test_write_routes.py::test_fork_workers_and_subprocess \
	tests/integration/test_write_routes.py::test_rename_checkpoint_pattern \
	tests/integration/test_s3_faults.py tests/integration/test_read_versions.py \
	tests/integration/test_threads.py \
	tests/integration/test_write_tree.py::test_eight_threads_write_and_rename \
	tests/integration/test_prefill.py tests/integration/test_stats.py \
	tests/integration/test_credentials.py
SAN_COMMON := halt_on_error=1:abort_on_error=0:print_stacktrace=1
# TSan: a TSan runtime preloaded into an uninstrumented program (bash, python) crashes, and
# so does an instrumented librwsplit.so preloaded into an instrumented program (its
# interposed calls run before TSan is set up). So TSan checks the agents: the preloaded
# library is the ordinary build's, and the fetch and tree agents it starts (../bin/rwsplit
# beside it) are the instrumented CLI, which also runs with all its threads in the tests
# below. Reports go to build/tsan-reports/; any report fails the run.
TSAN_TESTS := tests/integration/test_agent.py tests/integration/test_threads.py \
	tests/integration/test_write_tree.py::test_eight_threads_write_and_rename \
	tests/integration/test_write_tree.py::test_multipart_file_through_lost_responses \
	tests/integration/test_write_routes.py::test_threads_write_many_files \
	tests/integration/test_credentials.py tests/integration/test_stats.py
TSAN_MIX := build/tsan-agent

asan: deps
	$(MAKE) BUILD=build/asan SAN=address,undefined CFLAGS="-O1 -g" test-tools \
		$(patsubst $(BUILD)/%,build/asan/%,$(UNITS))
	@set -e; for t in $(patsubst $(BUILD)/%,build/asan/%,$(UNITS)); do echo "== $$t"; \
		CK_FORK=yes ASAN_OPTIONS=$(SAN_COMMON):detect_leaks=1 \
		UBSAN_OPTIONS=$(SAN_COMMON) $$t; done
	RWSPLIT_BUILD=build/asan RWSPLIT_SANITIZER_PRELOAD=$$($(CC) -print-file-name=libasan.so) \
		ASAN_OPTIONS=$(SAN_COMMON):detect_leaks=0 UBSAN_OPTIONS=$(SAN_COMMON) \
		$(VENV)/bin/python -m pytest -q $(SAN_TESTS)

tsan: deps
	$(MAKE) test-tools
	$(MAKE) BUILD=build/tsan SAN=thread CFLAGS="-O1 -g" all \
		$(patsubst $(BUILD)/%,build/tsan/%,$(UNITS))
	@# die_after_fork=0: test_pool's fork child starts threads of its own, as a preloaded
	@# program's children do; TSan refuses that by default.
	@set -e; for t in $(patsubst $(BUILD)/%,build/tsan/%,$(UNITS)); do echo "== $$t"; \
		CK_FORK=yes TSAN_OPTIONS=$(SAN_COMMON):die_after_fork=0 $$t; done
	rm -rf $(TSAN_MIX) build/tsan-reports && mkdir -p $(TSAN_MIX)/bin build/tsan-reports
	cp -a $(BUILD)/lib $(BUILD)/tests $(TSAN_MIX)/ && cp build/tsan/bin/rwsplit $(TSAN_MIX)/bin/
	RWSPLIT_BUILD=$(TSAN_MIX) TSAN_OPTIONS=log_path=$(CURDIR)/build/tsan-reports/report \
		$(VENV)/bin/python -m pytest -q $(TSAN_TESTS)
	@if ls build/tsan-reports/report.* >/dev/null 2>&1; then \
		cat build/tsan-reports/report.*; echo "tsan: reports above"; exit 1; fi

# The integration suite STRESS_ROUNDS times under two CPU hogs (scripts/stress.sh); not part
# of make test (an hour of it), run before an issue about flaky tests is resolved.
STRESS_ROUNDS ?= 5
stress: test-tools
	scripts/stress.sh $(STRESS_ROUNDS)

# libFuzzer (clang, with ASan+UBSan) on the parsers of untrusted input: the config loader,
# the S3 XML parsers, the fetch agent's wire format, path normalization and the credentials
# file. Each target runs FUZZ_TIME seconds from its seeds (tests/fuzz/corpus/NAME; the XML
# target's are the unit tests' fixtures); what it finds new goes to build/fuzz/corpus/NAME,
# a crash to build/fuzz/crash-NAME-* and fails the run.
FUZZ_TIME ?= 20
fuzz: deps
	$(MAKE) BUILD=build/fuzz CC=clang SAN=address,undefined \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" $(patsubst $(BUILD)/%,build/fuzz/%,$(FUZZERS))
	tests/fuzz/xml_seeds.sh build/fuzz/seeds/xml
	rm -f build/fuzz/crash-*
	@set -e; for t in $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC)); do \
		seeds=tests/fuzz/corpus/$$t; [ -d $$seeds ] || seeds=build/fuzz/seeds/$$t; \
		mkdir -p build/fuzz/corpus/$$t; echo "== fuzz_$$t ($(FUZZ_TIME) s)"; \
		RWSPLIT_LOG=error build/fuzz/fuzz/fuzz_$$t build/fuzz/corpus/$$t $$seeds \
			-max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix=build/fuzz/crash-$$t- -print_final_stats=1 2>&1 | \
			grep -E '^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|Done)' \
			|| true; \
		! ls build/fuzz/crash-$$t-* >/dev/null 2>&1 || { echo "fuzz_$$t: crash saved above"; exit 1; }; \
	done

# An example end to end against a throw-away MinIO: examples/$(EXAMPLE)/demo.py, the
# TensorFlow job by default, EXAMPLE=pytorch for the PyTorch one. DEMO_ARGS passes options,
# e.g. DEMO_ARGS="--steps 500 --no-compare" (tf-mnist) or DEMO_ARGS="--limit 6000" (pytorch).
EXAMPLE ?= tf-mnist
demo: deps all
	@test -f examples/$(EXAMPLE)/demo.py || { echo "make demo: no examples/$(EXAMPLE)/demo.py (EXAMPLE=tf-mnist or pytorch)"; exit 64; }
	$(VENV)/bin/python examples/$(EXAMPLE)/demo.py --build $(BUILD) $(DEMO_ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/rwsplit
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/librwsplit.so
	install -m 0755 $(S3LIB) $(DESTDIR)$(PREFIX)/lib/librwsplit-s3.so
	install -m 0755 $(CLI) $(DESTDIR)$(PREFIX)/bin/rwsplit
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/rwsplit/README.md
	install -m 0644 config/examples/*.conf $(DESTDIR)$(PREFIX)/share/doc/rwsplit/

# clang-tidy reads .clang-tidy; both tools must report nothing.
lint:
	clang-tidy --quiet --warnings-as-errors='*' $(CORE_SRC) s3/s3_dso.c $(PRELOAD_SRC) $(CLI_SRC) -- \
		$(filter-out -MMD -MP,$(CFLAGS)) 2>&1 | { grep -v '^[0-9]* warnings* generated' || true; }; \
		exit $${PIPESTATUS[0]}
	cppcheck --quiet --error-exitcode=1 --std=c11 -I. $(CORE_SRC) $(PRELOAD_SRC) $(CLI_SRC)
	@# Lock annotations (common/lock.h): what is GUARDED_BY a lock is touched only under it.
	set -e; for f in $(CORE_SRC) $(PRELOAD_SRC) $(CLI_SRC); do \
		clang -fsyntax-only -Wthread-safety -Werror $(filter-out -MMD -MP,$(CFLAGS)) $$f; \
	done

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Benchmarks (bench/README.md): every workload of issue 6 through rwsplit and through what
# users would pick instead (s3fs-fuse, rclone mount, boto3), next to the server's ceiling and
# local disk / tmpfs, on one throw-away MinIO per script. Each script writes its own section
# of bench/RESULTS.md and a JSON file in bench/results/; chart.py draws bench/results.png.
.PHONY: bench
BENCH_SCRIPTS := small_files many_files large_file checkpoint metadata passthrough profile \
	epochs tree_save torch_peer latency
bench: deps
	scripts/bench-deps.sh
	$(MAKE) all
	set -e; for s in $(BENCH_SCRIPTS); do \
		echo "== bench/$$s.py" >&2; \
		$(VENV)/bin/python bench/$$s.py --out bench/RESULTS.md --build $(BUILD); \
	done
	$(VENV)/bin/python bench/chart.py --out bench/RESULTS.md
