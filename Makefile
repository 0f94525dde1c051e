# libnetx - a small socket library that follows the steps of network
# programming. GNU make.
#
#   make                    build/libnetx.a, build/libnetx.so (+ examples)
#   make test               unit and end-to-end tests (installs cmocka if it can)
#   make SANITIZE=1 test    the same under AddressSanitizer + UBSan
#   make SANITIZE=thread test   the same under ThreadSanitizer
#   make docs-check         the programs and transcripts in README.md and docs/ (in make test)
#   make man-check          the man pages: one per function, groff-clean, EXAMPLES that compile (in make test)
#   make install            PREFIX=/usr/local DESTDIR= LIBDIR= INCLUDEDIR= MANDIR= DOCDIR=
#   make bench              libnetx against raw system calls (docs/performance.md);
#                           BENCH=poll|thread|udp|many|event|insns|http|tls|proxy runs one part
#   make uninstall, make clean, make format
#
# Your CFLAGS and LDFLAGS are used as given; the flags libnetx needs live in
# NETX_CFLAGS and are added to them.

CC      ?= cc
CFLAGS  ?= -O2 -g
LDFLAGS ?=
AR      ?= ar

PREFIX       ?= /usr/local
EXEC_PREFIX  ?= $(PREFIX)
LIBDIR       ?= $(EXEC_PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
DOCDIR       ?= $(PREFIX)/share/doc/libnetx
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR      ?=

VERSION := 0.1.0
SOMAJOR := 0

# Each sanitizer build gets a tree of its own, so objects built with
# different flags never mix.
SANITIZE ?=
ifeq ($(SANITIZE),)
  BUILD ?= build
  SAN_FLAGS :=
else ifeq ($(SANITIZE),thread)
  BUILD ?= build/tsan
  SAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
  BUILD ?= build/asan
  SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

NETX_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic \
               -fPIC -fvisibility=hidden -Iinclude -MMD -MP $(SAN_FLAGS)
NETX_LDFLAGS := $(SAN_FLAGS)

UNAME_S := $(shell uname -s)
ifeq ($(UNAME_S),Darwin)
  SHARED_NAME := libnetx.$(SOMAJOR).dylib
  SHARED_LINK := libnetx.dylib
  SHARED_FLAGS := -dynamiclib -install_name $(LIBDIR)/$(SHARED_NAME)
  SHARED_REAL := $(SHARED_NAME)
else
  SHARED_NAME := libnetx.so.$(SOMAJOR)
  SHARED_LINK := libnetx.so
  SHARED_REAL := libnetx.so.$(VERSION)
  SHARED_FLAGS := -shared -Wl,-soname,$(SHARED_NAME)
endif

# The library, in the order the article teaches.
LIB_SRC := src/error.c src/trace.c src/addr.c src/socket.c src/tcp.c \
           src/udp.c src/io.c src/reader.c src/writer.c src/unix.c src/stop.c src/log.c src/poller.c
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
STATIC  := $(BUILD)/libnetx.a
SHARED  := $(BUILD)/$(SHARED_REAL)

# Examples: one program per file, each a step of the article, linked with
# the static library so they run from build/examples/ as they are.
EXAMPLES     := $(patsubst examples/%.c,%,$(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLES:%=$(BUILD)/examples/%)

# Tests: one cmocka binary per module, linked with the static library and
# the fault-injection shims (tests/fault.c) through the linker's --wrap.
TEST_NAMES   := $(patsubst tests/test_%.c,%,$(wildcard tests/test_*.c))
TEST_BINS    := $(TEST_NAMES:%=$(BUILD)/tests/test_%)
TEST_SUPPORT := $(BUILD)/tests/obj/support.o $(BUILD)/tests/obj/fault.o $(BUILD)/tests/obj/proc.o
WRAPPED      := send recvmsg sendto connect accept4 poll close
TEST_CFLAGS   = -U_FORTIFY_SOURCE -Isrc $(CMOCKA_CFLAGS) -DNETX_EXAMPLES_DIR='"$(BUILD)/examples"'
TEST_LDLIBS   = $(CMOCKA_LIBS) -lpthread
TEST_WRAP    := $(foreach f,$(WRAPPED),-Wl,--wrap=$(f))
CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   = $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

# TLS, the article's guide step 7: `make TLS=1` also builds libnetx_tls
# (its own static and shared library, and netx-tls.pc) on OpenSSL 3, the TLS
# examples and their tests. Without TLS=1 nothing here is built, and
# nothing links OpenSSL.
TLS ?=
ifeq ($(TLS),1)
  OPENSSL_CFLAGS := $(shell pkg-config --cflags openssl 2>/dev/null)
  OPENSSL_LIBS   := $(shell pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto)
  TLS_STATIC     := $(BUILD)/libnetx_tls.a
  ifeq ($(UNAME_S),Darwin)
    TLS_SHARED_NAME := libnetx_tls.$(SOMAJOR).dylib
    TLS_SHARED_LINK := libnetx_tls.dylib
    TLS_SHARED_REAL := $(TLS_SHARED_NAME)
    TLS_SHARED_FLAGS := -dynamiclib -install_name $(LIBDIR)/$(TLS_SHARED_NAME)
  else
    TLS_SHARED_NAME := libnetx_tls.so.$(SOMAJOR)
    TLS_SHARED_LINK := libnetx_tls.so
    TLS_SHARED_REAL := libnetx_tls.so.$(VERSION)
    TLS_SHARED_FLAGS := -shared -Wl,-soname,$(TLS_SHARED_NAME)
  endif
  TLS_SHARED := $(BUILD)/$(TLS_SHARED_REAL)
  TLS_LIB    := $(TLS_STATIC) $(BUILD)/$(TLS_SHARED_LINK) $(BUILD)/netx-tls.pc \
                $(BUILD)/man-tls/man3/netx_tls.3
else
  EXAMPLES   := $(filter-out tls_%,$(EXAMPLES))
  EXAMPLE_BINS := $(EXAMPLES:%=$(BUILD)/examples/%)
  TEST_NAMES := $(filter-out tls%,$(TEST_NAMES))
  TEST_BINS  := $(TEST_NAMES:%=$(BUILD)/tests/test_%)
  TLS_LIB    :=
endif

.PHONY: all lib examples demo valgrind-examples tests test check deps header-check docs-check installcheck install uninstall clean format FORCE

all: lib examples

examples: $(EXAMPLE_BINS)

$(BUILD)/examples/%: examples/%.c $(STATIC) | $(BUILD)/examples
	$(CC) $(NETX_CFLAGS) $(CFLAGS) $(NETX_LDFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) -lpthread

lib: $(STATIC) $(BUILD)/$(SHARED_LINK) $(BUILD)/netx.pc $(BUILD)/man/man3/netx.3 $(TLS_LIB)

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj
	$(CC) $(NETX_CFLAGS) $(CFLAGS) -c -o $@ $<

# libnetx_tls (TLS=1): src/tls.c alone, on libnetx and OpenSSL.
$(BUILD)/obj/tls.o: src/tls.c | $(BUILD)/obj
	$(CC) $(NETX_CFLAGS) $(OPENSSL_CFLAGS) $(CFLAGS) -c -o $@ $<

$(TLS_STATIC): $(BUILD)/obj/tls.o
	rm -f $@
	$(AR) rcs $@ $^

$(TLS_SHARED): $(BUILD)/obj/tls.o $(BUILD)/$(SHARED_LINK)
	$(CC) $(TLS_SHARED_FLAGS) $(NETX_LDFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    -L$(BUILD) -lnetx $(OPENSSL_LIBS)

$(BUILD)/$(TLS_SHARED_LINK): $(TLS_SHARED)
ifneq ($(TLS_SHARED_NAME),$(TLS_SHARED_REAL))
	ln -sf $(TLS_SHARED_REAL) $(BUILD)/$(TLS_SHARED_NAME)
endif
	ln -sf $(TLS_SHARED_NAME) $@

$(BUILD)/netx-tls.pc: netx-tls.pc.in FORCE | $(BUILD)/obj
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(BUILD)/man-tls/man3/netx_tls.3: include/netx_tls.h docs/mkman.sh $(BUILD)/man/docdir.stamp
	rm -rf $(BUILD)/man-tls/man3
	sh docs/mkman.sh -d '$(DOCDIR)' $(BUILD)/man-tls/man3 include/netx_tls.h

# The TLS examples link both libraries and OpenSSL.
$(BUILD)/examples/tls_%: examples/tls_%.c $(STATIC) $(TLS_STATIC) | $(BUILD)/examples
	$(CC) $(NETX_CFLAGS) $(OPENSSL_CFLAGS) $(CFLAGS) $(NETX_LDFLAGS) $(LDFLAGS) -o $@ $< \
	    $(TLS_STATIC) $(STATIC) $(OPENSSL_LIBS) -lpthread

# http_client fetches https:// URLs too when TLS=1: it is then built with
# NETX_HTTP_TLS and linked like the TLS examples, and its test is compiled
# with NETX_HTTP_TLS, which adds the https cases. Without TLS=1 it is a
# plain example that refuses https://. The stamp holds the TLS setting they
# were built with, so switching TLS=1 on or off in one BUILD rebuilds both.
$(BUILD)/obj/http_client-tls.stamp: FORCE | $(BUILD)/obj
	@echo 'TLS=$(TLS)' | cmp -s - $@ || echo 'TLS=$(TLS)' > $@
$(BUILD)/examples/http_client $(BUILD)/tests/obj/test_http_client.o: $(BUILD)/obj/http_client-tls.stamp
ifeq ($(TLS),1)
$(BUILD)/examples/http_client: examples/http_client.c $(STATIC) $(TLS_STATIC) | $(BUILD)/examples
	$(CC) $(NETX_CFLAGS) -DNETX_HTTP_TLS $(OPENSSL_CFLAGS) $(CFLAGS) $(NETX_LDFLAGS) $(LDFLAGS) \
	    -o $@ $< $(TLS_STATIC) $(STATIC) $(OPENSSL_LIBS) -lpthread
$(BUILD)/tests/obj/test_http_client.o: TEST_CFLAGS += -DNETX_HTTP_TLS
endif

$(STATIC): $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) $(SHARED_FLAGS) $(NETX_LDFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^

$(BUILD)/$(SHARED_LINK): $(SHARED)
ifneq ($(SHARED_NAME),$(SHARED_REAL))
	ln -sf $(SHARED_REAL) $(BUILD)/$(SHARED_NAME)
endif
	ln -sf $(SHARED_NAME) $@

# Section 3 man pages, one per public function, made from the comments in
# netx.h so the two never disagree (the TLS ones, from netx_tls.h, in a
# directory of their own: they are installed with TLS=1 only). A page left
# by a function since removed goes: the directory is made anew. netx(3)
# says where the docs are installed, so the pages are made again when
# DOCDIR changes.
$(BUILD)/man/man3/netx.3: include/netx.h docs/mkman.sh $(BUILD)/man/docdir.stamp
	rm -rf $(BUILD)/man/man3
	sh docs/mkman.sh -d '$(DOCDIR)' $(BUILD)/man/man3

$(BUILD)/man/docdir.stamp: FORCE
	@mkdir -p $(@D)
	@echo '$(DOCDIR)' | cmp -s - $@ || echo '$(DOCDIR)' > $@

# In make test: every public function has a page that groff -man -ww reads
# without a warning, with an EXAMPLES section whose C compiles
# (tests/man.sh). The TLS pages are checked too, TLS=1 or not: they are
# text, and their examples need netx_tls.h, not OpenSSL.
.PHONY: man-check
test check: man-check
man-check:
	@CC='$(CC)' DOCDIR='$(DOCDIR)' sh tests/man.sh $(BUILD)/man-check

# netx.pc is written on every build, so it always names this PREFIX.
$(BUILD)/netx.pc: netx.pc.in FORCE | $(BUILD)/obj
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(BUILD)/obj $(BUILD)/tests/obj $(BUILD)/examples:
	mkdir -p $@

# The article's steps, live on loopback, with NETX_TRACE=1.
demo: $(EXAMPLE_BINS)
	@bash examples/demo.sh $(BUILD)/examples

# Every example under valgrind memcheck, driven by the demo.
valgrind-examples: $(EXAMPLE_BINS)
	@sh tests/valgrind-examples.sh $(BUILD)/examples

# The tutorial's pictures, drawn from real runs: tools/diagrams.sh runs the
# examples on loopback with NETX_TRACE=1 and tools/timeline draws their
# traces as SVG. `make diagrams` writes them into docs/tutorial/img/ (commit
# them); `make test` draws them again and fails if one is not the same.
DIAGRAM_BINS := $(BUILD)/tools/timeline \
                $(addprefix $(BUILD)/examples/,hello_server hello_client event_server echo_client)

.PHONY: diagrams diagrams-check

$(BUILD)/tools/%: tools/%.c | $(BUILD)/tools
	$(CC) $(NETX_CFLAGS) $(CFLAGS) $(NETX_LDFLAGS) $(LDFLAGS) -o $@ $<

$(BUILD)/tools:
	mkdir -p $@

diagrams: $(DIAGRAM_BINS)
	@bash tools/diagrams.sh $(BUILD) docs/tutorial/img

diagrams-check: $(DIAGRAM_BINS)
	@bash tools/diagrams.sh --check $(BUILD) docs/tutorial/img

test check: diagrams-check

# Tests --------------------------------------------------------------------

# cmocka is the one thing the tests need; tests/deps.sh installs it when it
# can, or says exactly how.
deps:
	@sh tests/deps.sh

$(BUILD)/tests/obj/%.o: tests/%.c | $(BUILD)/tests/obj deps
	$(CC) $(NETX_CFLAGS) $(TEST_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/tests/obj/test_%.o $(TEST_SUPPORT) $(STATIC)
	$(CC) $(NETX_LDFLAGS) $(CFLAGS) $(LDFLAGS) $(TEST_WRAP) -o $@ $^ $(TEST_LDLIBS)

# The TLS tests (TLS=1) make their certificates with OpenSSL's API. Static
# pattern rules: a plain pattern test_tls% would not match test_tls itself
# (a stem is never empty).
TLS_TEST_BINS := $(filter $(BUILD)/tests/test_tls%,$(TEST_BINS))
$(TLS_TEST_BINS:$(BUILD)/tests/%=$(BUILD)/tests/obj/%.o): $(BUILD)/tests/obj/%.o: tests/%.c | $(BUILD)/tests/obj deps
	$(CC) $(NETX_CFLAGS) $(TEST_CFLAGS) $(OPENSSL_CFLAGS) $(CFLAGS) -c -o $@ $<

$(TLS_TEST_BINS): $(BUILD)/tests/%: $(BUILD)/tests/obj/%.o $(TEST_SUPPORT) $(TLS_STATIC) $(STATIC)
	$(CC) $(NETX_LDFLAGS) $(CFLAGS) $(LDFLAGS) $(TEST_WRAP) -o $@ $^ $(OPENSSL_LIBS) \
	    $(TEST_LDLIBS)

# Build the test programs without running them.
tests: deps $(TEST_BINS)

test check: deps header-check $(TEST_BINS) $(EXAMPLE_BINS) $(FUZZ_REPLAY_BINS) $(STATIC) $(TLS_STATIC)
	@sh tests/run.sh $(TEST_BINS)
	@$(MAKE) -s fuzz-replay
	@$(DOCS_TEST) --self-test
	@$(DOCS_TEST)

# The pages (README.md, docs/): each program in them compiled, each checked
# transcript run again and compared, each relative link followed; the rules
# are in docs/tutorial/README.md. --self-test first runs the harness on the
# pages in tests/docs/, broken on purpose. The programs get the sanitizer
# flags the library was built with, so they link with it and run under them.
DOCS_TEST = CC='$(CC)' BUILD='$(BUILD)' TLS='$(TLS)' DOCS_CFLAGS='$(SAN_FLAGS)' \
            OPENSSL_CFLAGS='$(OPENSSL_CFLAGS)' OPENSSL_LIBS='$(OPENSSL_LIBS)' sh tests/docs.sh

docs-check: $(STATIC) $(TLS_STATIC) $(EXAMPLE_BINS)
	@$(DOCS_TEST) --self-test
	@$(DOCS_TEST)

# The header must compile on its own, as C and as C++.
CXX ?= c++
header-check:
	@printf '#include "netx.h"\n' | $(CC) -std=c11 -Wall -Wextra -Wpedantic -Werror \
	    -Iinclude -fsyntax-only -x c -
	@if command -v $(CXX) >/dev/null 2>&1; then \
	    printf '#include "netx.h"\nint main() { return netx_local_port(-1) == -1 ? 0 : 1; }\n' | \
	    $(CXX) -Wall -Wextra -Wpedantic -Werror -Iinclude -fsyntax-only -x c++ - && \
	    echo "header: netx.h compiles alone as C and as C++"; \
	else echo "header: no C++ compiler ($(CXX)); checked as C only"; fi

# Do what README.md's "Using it" says in a scratch prefix - install, build
# its hello.c with pkg-config, run it against echo_server - then uninstall.
installcheck: lib $(BUILD)/examples/echo_server
	@MAKE="$(MAKE)" CC="$(CC)" TLS="$(TLS)" EXAMPLES="$(BUILD)/examples" sh tests/install.sh

# Install ------------------------------------------------------------------

# The docs go under DOCDIR laid out as in the tree, so that their links to
# each other still work: README.md, docs/*.md, and the tutorial with its
# pictures. netx(3) says where.
DOC_FILES := README.md $(wildcard docs/*.md docs/tutorial/*.md docs/tutorial/img/*.svg)
DOC_DIRS  := $(sort $(patsubst %/,%,$(dir $(DOC_FILES))))

install: lib
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/netx.h $(DESTDIR)$(INCLUDEDIR)/netx.h
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libnetx.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/$(SHARED_REAL)
ifneq ($(SHARED_NAME),$(SHARED_REAL))
	ln -sf $(SHARED_REAL) $(DESTDIR)$(LIBDIR)/$(SHARED_NAME)
endif
	ln -sf $(SHARED_NAME) $(DESTDIR)$(LIBDIR)/$(SHARED_LINK)
	install -m 644 $(BUILD)/netx.pc $(DESTDIR)$(PKGCONFIGDIR)/netx.pc
	install -d $(DESTDIR)$(MANDIR)/man3
	install -m 644 $(BUILD)/man/man3/*.3 $(DESTDIR)$(MANDIR)/man3/
	install -d $(addprefix $(DESTDIR)$(DOCDIR)/,$(DOC_DIRS))
	for f in $(DOC_FILES); do install -m 644 $$f $(DESTDIR)$(DOCDIR)/$$f || exit 1; done
ifeq ($(TLS),1)
	install -m 644 include/netx_tls.h $(DESTDIR)$(INCLUDEDIR)/netx_tls.h
	install -m 644 $(TLS_STATIC) $(DESTDIR)$(LIBDIR)/libnetx_tls.a
	install -m 755 $(TLS_SHARED) $(DESTDIR)$(LIBDIR)/$(TLS_SHARED_REAL)
ifneq ($(TLS_SHARED_NAME),$(TLS_SHARED_REAL))
	ln -sf $(TLS_SHARED_REAL) $(DESTDIR)$(LIBDIR)/$(TLS_SHARED_NAME)
endif
	ln -sf $(TLS_SHARED_NAME) $(DESTDIR)$(LIBDIR)/$(TLS_SHARED_LINK)
	install -m 644 $(BUILD)/netx-tls.pc $(DESTDIR)$(PKGCONFIGDIR)/netx-tls.pc
	install -m 644 $(BUILD)/man-tls/man3/*.3 $(DESTDIR)$(MANDIR)/man3/
endif

# Removes the TLS files too, whether or not TLS=1 is given: an uninstall
# must not leave half a library behind.
uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/netx.h $(DESTDIR)$(LIBDIR)/libnetx.a \
	      $(DESTDIR)$(LIBDIR)/$(SHARED_REAL) $(DESTDIR)$(LIBDIR)/$(SHARED_NAME) \
	      $(DESTDIR)$(LIBDIR)/$(SHARED_LINK) $(DESTDIR)$(PKGCONFIGDIR)/netx.pc
	rm -f $(DESTDIR)$(INCLUDEDIR)/netx_tls.h $(DESTDIR)$(LIBDIR)/libnetx_tls.a \
	      $(DESTDIR)$(LIBDIR)/libnetx_tls.so $(DESTDIR)$(LIBDIR)/libnetx_tls.so.$(SOMAJOR) \
	      $(DESTDIR)$(LIBDIR)/libnetx_tls.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libnetx_tls.dylib \
	      $(DESTDIR)$(LIBDIR)/libnetx_tls.$(SOMAJOR).dylib $(DESTDIR)$(PKGCONFIGDIR)/netx-tls.pc
	rm -f $(DESTDIR)$(MANDIR)/man3/netx.3 $(DESTDIR)$(MANDIR)/man3/netx_*.3
	rm -f $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/docs/*.md \
	      $(DESTDIR)$(DOCDIR)/docs/tutorial/*.md $(DESTDIR)$(DOCDIR)/docs/tutorial/img/*.svg
	for d in $(DESTDIR)$(DOCDIR)/docs/tutorial/img $(DESTDIR)$(DOCDIR)/docs/tutorial \
	         $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(DOCDIR); do rmdir $$d 2>/dev/null || true; done

clean:
	rm -rf build

format:
	clang-format -i include/*.h src/*.c src/*.h tests/*.c tests/*.h tests/fuzz/*.c examples/*.c bench/*.c

# Fuzzing ------------------------------------------------------------------

# libFuzzer harnesses for netx_reader and the address text functions
# (tests/fuzz/fuzz_*.c). They need clang and its libFuzzer runtime (Debian:
# libclang-rt-14-dev for clang 14, or libclang-rt-dev for the default
# clang). The library is compiled into each harness with the fuzzing flags,
# never taken from the normal build. `make fuzz` runs each harness for
# FUZZ_SECONDS on a copy of its seed corpus in $(FUZZ_BUILD)/corpus/, so the
# corpus in git is never changed (and what one run finds, the next starts
# from); a crash fails the target and leaves its input in
# $(FUZZ_BUILD)/artifacts/.
FUZZ_CC        ?= clang
FUZZ_CFLAGS    ?= -O1 -g
FUZZ_SECONDS   ?= 60
FUZZ_BUILD     ?= build/fuzz
FUZZ_NAMES     := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS      := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_FLAGS     := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic \
                  -U_FORTIFY_SOURCE -Iinclude -Isrc -Itests -Iexamples \
                  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                  -fno-omit-frame-pointer
FUZZ_RUN_FLAGS := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

.PHONY: fuzz fuzz-build fuzz-replay

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC) $(wildcard src/*.h) include/netx.h $(wildcard examples/*.h) \
                      tests/fault.c tests/fault.h
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_CFLAGS) $(TEST_WRAP) -o $@ $< $(LIB_SRC) tests/fault.c -lpthread

# Each harness's output goes to its log; the last lines are shown either way.
fuzz: $(FUZZ_BINS)
	@for name in $(FUZZ_NAMES); do \
	    corpus=$(FUZZ_BUILD)/corpus/$$name; log=$(FUZZ_BUILD)/$$name.log; \
	    mkdir -p $$corpus $(FUZZ_BUILD)/artifacts; \
	    cp tests/fuzz/corpus/$$name/* $$corpus/; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS) s (log: $$log)"; \
	    if $(FUZZ_BUILD)/fuzz_$$name $(FUZZ_RUN_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
	            -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$name- $$corpus >$$log 2>&1; then \
	        grep -E '^#[0-9]+.*DONE|^stat::(number_of_executed_units|average_exec_per_sec)' $$log; \
	    else \
	        tail -n 60 $$log; \
	        echo "fuzz: $$name FAILED; the input is in $(FUZZ_BUILD)/artifacts/"; \
	        exit 1; \
	    fi; \
	done

# The seed corpus (regression inputs included) as a plain test: each input
# once, with $(CC) and no libFuzzer, through tests/fuzz/replay.c. Works with
# gcc, SANITIZE=1, and FUZZ_REPLAY_WRAPPER="valgrind --error-exitcode=1".
FUZZ_REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
FUZZ_REPLAY_WRAPPER ?=

$(BUILD)/fuzz/obj:
	mkdir -p $@

$(BUILD)/fuzz/obj/%.o: tests/fuzz/%.c | $(BUILD)/fuzz/obj
	$(CC) $(NETX_CFLAGS) -U_FORTIFY_SOURCE -Isrc -Itests -Iexamples $(CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/obj/fault.o: tests/fault.c | $(BUILD)/fuzz/obj
	$(CC) $(NETX_CFLAGS) -U_FORTIFY_SOURCE $(CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/replay_%: $(BUILD)/fuzz/obj/fuzz_%.o $(BUILD)/fuzz/obj/replay.o \
                        $(BUILD)/fuzz/obj/fault.o $(STATIC)
	$(CC) $(NETX_LDFLAGS) $(CFLAGS) $(LDFLAGS) $(TEST_WRAP) -o $@ $^ -lpthread

fuzz-replay: $(FUZZ_REPLAY_BINS)
	@for name in $(FUZZ_NAMES); do \
	    printf 'fuzz-replay: %s: ' $$name; \
	    $(FUZZ_REPLAY_WRAPPER) $(BUILD)/fuzz/replay_$$name tests/fuzz/corpus/$$name/* || exit 1; \
	done

# Benchmarks ---------------------------------------------------------------

# `make bench` rebuilds the library and examples at -O2 in a tree of their
# own (so the figures never come from a debug or sanitizer build), builds
# the load generator and the raw-syscall baselines in bench/, and runs
# bench/run.sh: each libnetx server against its raw twin, in the same run.
# All of it takes about 4 minutes on two cores (2.5 without the http, tls
# and proxy parts). BENCH=NAME runs one part
# (several: BENCH="event many"; an unknown name is an error):
#   poll    poll_server: 50 connections, latency on one         (about 25 s)
#   thread  threaded_server: 50 connections, latency, bulk       (about 35 s)
#   udp     udp_server                                           (about 12 s)
#   many    10,000 connections, then 50 busy beside them idle:
#           poll_server, and event_server on epoll and on poll   (about 40 s)
#   event   event_server on epoll and on poll: 50 connections,
#           and its 10,000-connection scenarios                  (about 50 s)
#   insns   instructions per round trip (callgrind)              (about 5 s)
#   http    http_server against nginx, 1 KiB and 1 MiB files, load
#           from wrk (skipped, in one line, without nginx and wrk)  (about 45 s)
#   tls     tls_server against an echo server written on OpenSSL:
#           handshakes/s and bulk MB/s; needs TLS=1 (`make bench TLS=1`
#           also builds the TLS examples in the bench tree)      (about 25 s)
#   proxy   tcp_proxy against HAProxy, the same echo backend behind both:
#           50 connections, a new connection per request, added latency
#           (skipped, in one line, without haproxy)              (about 30 s)
BENCH_CFLAGS ?= -O2 -g -gdwarf-4
BENCH_DIR    := build/bench
BENCH_TREE   := $(BENCH_DIR)/tree
# The TLS baseline and load generator link OpenSSL, and are built with
# TLS=1 only: without it, nothing in the benchmark links OpenSSL.
BENCH_TLS_SRC := bench/raw_tls_echo.c bench/tls_loadgen.c
BENCH_BINS   := $(patsubst bench/%.c,$(BENCH_DIR)/%,$(filter-out $(BENCH_TLS_SRC),$(wildcard bench/*.c)))
ifeq ($(TLS),1)
  BENCH_BINS += $(BENCH_TLS_SRC:bench/%.c=$(BENCH_DIR)/%)
endif
BENCH_PARTS  := poll thread udp many event insns http tls proxy
BENCH_comma  := ,

.PHONY: bench bench-bins

bench:
	$(if $(filter-out $(BENCH_PARTS),$(subst $(BENCH_comma), ,$(BENCH))),$(error BENCH=$(BENCH): no such part; the parts are: $(BENCH_PARTS) (unset: all)))
	@$(MAKE) -f $(firstword $(MAKEFILE_LIST)) --no-print-directory BUILD=$(BENCH_TREE) SANITIZE= CFLAGS='$(BENCH_CFLAGS)' examples
	@$(MAKE) -f $(firstword $(MAKEFILE_LIST)) --no-print-directory SANITIZE= bench-bins
	@BENCH='$(BENCH)' BENCH_TLS='$(TLS)' bash bench/run.sh $(BENCH_TREE) $(BENCH_DIR)

bench-bins: $(BENCH_BINS)

$(BENCH_DIR)/%: bench/%.c $(BENCH_TREE)/libnetx.a | $(BENCH_DIR)
	$(CC) $(NETX_CFLAGS) $(BENCH_CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_TREE)/libnetx.a -lpthread

# The two on OpenSSL, written on it directly: no libnetx in them.
$(BENCH_TLS_SRC:bench/%.c=$(BENCH_DIR)/%): $(BENCH_DIR)/%: bench/%.c | $(BENCH_DIR)
	$(CC) $(NETX_CFLAGS) $(OPENSSL_CFLAGS) $(BENCH_CFLAGS) $(LDFLAGS) -o $@ $< $(OPENSSL_LIBS)

$(BENCH_DIR):
	mkdir -p $@

-include $(wildcard $(BENCH_DIR)/*.d $(BUILD)/fuzz/obj/*.d $(BUILD)/obj/*.d $(BUILD)/tests/obj/*.d $(BUILD)/examples/*.d)
