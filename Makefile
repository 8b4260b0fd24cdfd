# rac - build libra (static and shared), rac, the tests and the examples.
#
#   make            libra.a, libra.so and rac in build/
#   make test       build and run the Criterion suites
#   make SAN=1 test the same under ASan and UBSan (in build-san/)
#   make data       small data sets from Debian packages, into data/
#   make install PREFIX=/usr/local
#   make fuzz       the front-end fuzz target (clang, libFuzzer)
#
# Generated sources (re2c, lemon) live only in the build folder.

PREFIX  ?= /usr/local
CC      ?= cc
LD      ?= ld
OBJCOPY ?= objcopy
RE2C    ?= re2c
LEMON   ?= lemon
LEMPAR  ?= $(wildcard /usr/share/lemon/lempar.c)

ifeq ($(SAN),1)
B        := build-san
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN    := -fsanitize=address,undefined
else
B        := build
OPT      ?= -O2 -g
LDSAN    :=
endif

WARN     := -Wall -Wextra -Wno-unused-parameter
CFLAGS_ALL := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(OPT) $(WARN) -fPIC -fopenmp-simd -pthread $(CFLAGS)
LIBCFLAGS := $(CFLAGS_ALL) -fvisibility=hidden -DRA_BUILDING_LIB -DRA_STDLIB_DIR=\"$(abspath $(PREFIX))/share/rac/stdlib\" -I$(B)/lang -Iinclude
# GEMM: libxsmm's JIT kernels (chosen by cpuid) where pkg-config finds
# libxsmm (Debian's libxsmm-dev), OpenBLAS for what they decline and for
# everything without it; `make XSMM=0` builds without it.  `rac --version`
# says which.  libxsmm is a static library: it comes before -lopenblas,
# which gives it the BLAS symbols it names (ra.pc lists it last, after
# OpenBLAS's shared library), and libra.so keeps its symbols hidden.
XSMM     ?= $(shell pkg-config --exists libxsmm 2>/dev/null && echo 1 || echo 0)
ifeq ($(XSMM),1)
XSMM_CFLAGS := -DRA_HAVE_LIBXSMM $(shell pkg-config --cflags libxsmm)
XSMM_LIBS   := $(shell pkg-config --libs libxsmm)
SO_HIDE     := -Wl,--exclude-libs,libxsmm.a
else
XSMM_CFLAGS :=
XSMM_LIBS   :=
SO_HIDE     :=
endif
ifeq ($(filter s,$(firstword $(MAKEFLAGS))),)
$(info gemm: $(if $(filter 1,$(XSMM)),libxsmm (JIT kernels by cpuid) then openblas,openblas (libxsmm not found or XSMM=0)))
endif
LIBS     := $(XSMM_LIBS) -lopenblas -lffi -ljansson -ldl -lm -lpthread $(LDSAN)

# The LLVM JIT (compiler/jit/, docs/notes.md): built when an llvm-config of
# LLVM 15 or later is found (llvm-config-19 first); `make LLVM=0` leaves it
# out, and --jit is then a usage error.  Only compiler/jit/ sees LLVM's
# headers (as system headers, so -Wall -Wextra stay ours).
LLVM ?= 1
ifeq ($(LLVM),1)
LLVM_CONFIG ?= $(firstword $(foreach v,19 18 17 16 15,$(shell command -v llvm-config-$(v) 2>/dev/null)) \
                 $(shell c=$$(command -v llvm-config 2>/dev/null) && [ "$$($$c --version | cut -d. -f1)" -ge 15 ] && echo $$c))
endif
ifneq ($(LLVM_CONFIG),)
JIT_SRC  := $(wildcard compiler/jit/*.c)
JIT_CFLAGS := -isystem $(shell $(LLVM_CONFIG) --includedir)
LIBCFLAGS += -DRA_HAVE_JIT
JIT_LIBS := $(shell $(LLVM_CONFIG) --ldflags) $(shell $(LLVM_CONFIG) --libs orcjit native passes)
LIBS     += $(JIT_LIBS)
else
JIT_SRC  :=
endif

# MPI (runtime/train/dist.c, docs/distributed.md): built when mpicc
# (Debian's libopenmpi-dev) answers --showme, else pkg-config's ompi-c;
# `make MPI=0` leaves it out, and a run under mpirun with more than one
# process is then a usage error.  Only dist.c sees mpi.h.
MPI ?= $(shell { mpicc --showme:compile >/dev/null 2>&1 || pkg-config --exists ompi-c 2>/dev/null; } && echo 1 || echo 0)
ifeq ($(MPI),1)
MPI_CFLAGS := -DRA_HAVE_MPI $(shell mpicc --showme:compile 2>/dev/null || pkg-config --cflags ompi-c)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null || pkg-config --libs ompi-c)
LIBS       += $(MPI_LIBS)
else
MPI_CFLAGS :=
MPI_LIBS   :=
endif
ifeq ($(filter s,$(firstword $(MAKEFLAGS))),)
$(info mpi: $(if $(filter 1,$(MPI)),$(shell mpicc --showme:version 2>/dev/null || echo ompi-c),none (no mpicc or libopenmpi-dev, or MPI=0)))
endif

BASE_SRC := $(wildcard base/*.c)
LANG_SRC := $(wildcard lang/*.c)
COMP_SRC := $(wildcard compiler/*.c)
RT_SRC   := $(wildcard runtime/*/*.c)
LIB_OBJ  := $(patsubst %.c,$(B)/%.o,$(BASE_SRC) $(LANG_SRC) $(COMP_SRC) $(JIT_SRC) $(RT_SRC)) \
            $(B)/lang/lexer.o $(B)/lang/parser.o
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(patsubst %.c,$(B)/%.o,$(CLI_SRC))
# The command line's tools that the suites test directly (no main in them).
CLI_TOOL_OBJ := $(filter-out $(B)/cli/rac.o,$(CLI_OBJ))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))

.PHONY: all test test-unit jit-config mpi-config clean install uninstall embed embed-check data fuzz bench FORCE
all: $(B)/libra.a $(B)/libra_int.a $(B)/libra.so $(B)/rac

# lemon writes into lang/gen; parser.h is replaced only when its text
# changes, so a change to a grammar action or comment rebuilds the parser
# alone, and the token codes rebuild only what includes parser.h (the
# objects' .d files say which).
$(B)/lang/parser.c: lang/parser.y
	@mkdir -p $(B)/lang/gen
	$(LEMON) -q -d$(B)/lang/gen $(if $(LEMPAR),-T$(LEMPAR)) lang/parser.y
	@cmp -s $(B)/lang/gen/parser.h $(B)/lang/parser.h || cp $(B)/lang/gen/parser.h $(B)/lang/parser.h
	@cp $(B)/lang/gen/parser.c $@

$(B)/lang/parser.h: $(B)/lang/parser.c

$(B)/lang/lexer.c: lang/lexer.re $(B)/lang/parser.h
	@mkdir -p $(B)/lang
	$(RE2C) -W --no-generation-date -o $@ lang/lexer.re

$(B)/lang/lexer.o: $(B)/lang/lexer.c
	$(CC) $(LIBCFLAGS) -Ilang -MMD -MP -Wno-unused-function -c -o $@ $<

$(B)/lang/parser.o: $(B)/lang/parser.c
	$(CC) $(LIBCFLAGS) -Ilang -MMD -MP -Wno-unused-parameter -Wno-unused-variable -Wno-sign-compare -c -o $@ $<

# The GEMM backend's object follows XSMM (rebuilt when it changes).
$(B)/gemm.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(XSMM)' | cmp -s - $@ || echo '$(XSMM)' > $@
$(B)/runtime/exec/gemm_xsmm.o: $(B)/gemm.stamp
$(B)/runtime/exec/gemm_xsmm.o: LIBCFLAGS += $(XSMM_CFLAGS)

$(B)/compiler/jit/%.o: compiler/jit/%.c | $(B)/lang/parser.h
	@mkdir -p $(dir $@)
	$(CC) $(LIBCFLAGS) $(JIT_CFLAGS) -MMD -MP -c -o $@ $<

# dist.c follows MPI (rebuilt when it changes); its headers are system
# headers, so -Wall -Wextra stay ours.
$(B)/mpi.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(MPI) $(MPI_CFLAGS)' | cmp -s - $@ || echo '$(MPI) $(MPI_CFLAGS)' > $@
$(B)/runtime/train/dist.o: $(B)/mpi.stamp
$(B)/runtime/train/dist.o: LIBCFLAGS += $(subst -I,-isystem ,$(MPI_CFLAGS))

# Objects that see RA_HAVE_JIT are rebuilt when the choice changes.
$(B)/jit.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(LLVM_CONFIG)' | cmp -s - $@ || echo '$(LLVM_CONFIG)' > $@
$(B)/runtime/exec/exec_jit.o: $(B)/jit.stamp

$(B)/%.o: %.c | $(B)/lang/parser.h
	@mkdir -p $(dir $@)
	$(CC) $(LIBCFLAGS) -MMD -MP -c -o $@ $<

# libra.a is one object whose only global symbols are ra_*: the objects are
# linked into one (ld -r) and every hidden symbol made local, so the static
# library cannot collide with an application's names.  The suites and the
# micro-benchmarks call internal functions: they link libra_int.a, the
# objects as built.
$(B)/libra.a: $(LIB_OBJ)
	$(LD) -r -o $(B)/libra.o $^
	$(OBJCOPY) --localize-hidden $(B)/libra.o
	rm -f $@
	ar rcs $@ $(B)/libra.o

$(B)/libra_int.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# Only ra_* is exported: linking libLLVM otherwise makes ld export the
# linker's own __bss_start, _edata and _end too.
$(B)/libra.map:
	@mkdir -p $(B)
	@printf '{ global: ra_*; local: *; };\n' > $@

$(B)/libra.so: $(LIB_OBJ) $(B)/libra.map
	$(CC) -shared -Wl,-soname,libra.so.0 $(SO_HIDE) -Wl,--version-script=$(B)/libra.map -o $@ $(LIB_OBJ) $(LIBS)

# rac is built over ra.h only, like any application of the library.
$(B)/cli/%.o: cli/%.c include/ra.h
	@mkdir -p $(B)/cli
	$(CC) $(CFLAGS_ALL) -Iinclude -MMD -MP -c -o $@ $<

$(B)/rac: $(CLI_OBJ) $(B)/libra.a
	$(CC) $(CFLAGS_ALL) -o $@ $(CLI_OBJ) $(B)/libra.a $(LIBS)

# Tests see everything; each suite is one binary.
$(B)/tests/%: tests/%.c tests/testutil.h tests/irutil.h $(B)/libra_int.a $(B)/libra.a $(CLI_TOOL_OBJ)
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS_ALL) $(XSMM_CFLAGS) -Iinclude -I$(B)/lang -o $@ $< $(CLI_TOOL_OBJ) $(B)/libra_int.a $(LIBS) -lcriterion

# A small native library for the extern tests (tests/ffi/myops.c).
$(B)/tests/libmyops.so: tests/ffi/myops.c
	@mkdir -p $(B)/tests
	$(CC) -std=c11 $(OPT) $(WARN) -fPIC -shared -o $@ $< -lm

$(TEST_BIN): $(B)/tests/libmyops.so

# An application that uses MPI and hands rac its communicator (test_mpi).
ifeq ($(MPI),1)
$(B)/tests/mpi_handoff: tests/mpi/handoff.c include/ra.h $(B)/libra.a
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS_ALL) $(subst -I,-isystem ,$(filter -I%,$(MPI_CFLAGS))) -Iinclude -o $@ $< $(B)/libra.a $(LIBS)
$(B)/tests/test_mpi: $(B)/tests/mpi_handoff
endif

test: all $(TEST_BIN)
	@bash tests/run.sh $(B)

# Every suite but the end-to-end example runs (for sanitizer builds).
test-unit: all $(TEST_BIN)
	@bash tests/run.sh $(B) test_examples

data:
	@bash tools/make_data.sh

fuzz:
	$(MAKE) -f tests/fuzz/fuzz.mk B=$(B)

bench: all
	@bash bench/run.sh $(B)

# ---- install: make install PREFIX=/usr/local [DESTDIR=/staging] ----
VERSION := $(shell sed -n 's/^\#define RA_VERSION_STRING "\(.*\)"/\1/p' include/ra.h)
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share/rac
MANDIR  ?= $(PREFIX)/share/man/man1
PCDIR   ?= $(LIBDIR)/pkgconfig

# The library's default stdlib folder (RA_STDLIB_DIR) comes from PREFIX:
# api.o is rebuilt when PREFIX changes.
$(B)/prefix.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(abspath $(PREFIX))' | cmp -s - $@ || echo '$(abspath $(PREFIX))' > $@
$(B)/runtime/api/api.o: $(B)/prefix.stamp
FORCE:

$(B)/ra.pc: ra.pc.in include/ra.h $(B)/prefix.stamp $(B)/gemm.stamp $(B)/mpi.stamp
	sed -e 's|@PREFIX@|$(abspath $(PREFIX))|' -e 's|@LIBDIR@|$(abspath $(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(abspath $(INCDIR))|' -e 's|@VERSION@|$(VERSION)|' -e 's|@JITLIBS@|$(JIT_LIBS)|' \
	    -e 's|^\(Libs.private: .*\)$$|\1 $(XSMM_LIBS) $(MPI_LIBS)|' ra.pc.in > $@

install: all $(B)/ra.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR) \
	    $(DESTDIR)$(MANDIR) $(DESTDIR)$(DATADIR)/stdlib
	install -m 755 $(B)/rac $(DESTDIR)$(BINDIR)/rac
	install -m 644 include/ra.h $(DESTDIR)$(INCDIR)/ra.h
	install -m 644 $(B)/libra.a $(DESTDIR)$(LIBDIR)/libra.a
	install -m 755 $(B)/libra.so $(DESTDIR)$(LIBDIR)/libra.so.$(VERSION)
	ln -sf libra.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libra.so.0
	ln -sf libra.so.0 $(DESTDIR)$(LIBDIR)/libra.so
	install -m 644 $(B)/ra.pc $(DESTDIR)$(PCDIR)/ra.pc
	install -m 644 docs/rac.1 $(DESTDIR)$(MANDIR)/rac.1
	cd stdlib && find . -type d -exec install -d '$(abspath $(DESTDIR)$(DATADIR))/stdlib/{}' ';' \
	    && find . -type f -name '*.ra' -exec install -m 644 {} '$(abspath $(DESTDIR)$(DATADIR))/stdlib/{}' ';'

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/rac $(DESTDIR)$(INCDIR)/ra.h $(DESTDIR)$(LIBDIR)/libra.a \
	    $(DESTDIR)$(LIBDIR)/libra.so $(DESTDIR)$(LIBDIR)/libra.so.0 \
	    $(DESTDIR)$(LIBDIR)/libra.so.$(VERSION) $(DESTDIR)$(PCDIR)/ra.pc $(DESTDIR)$(MANDIR)/rac.1
	rm -rf $(DESTDIR)$(DATADIR)/stdlib
	-rmdir $(DESTDIR)$(DATADIR) 2>/dev/null

# ---- the embedding example (examples/embed) ----
# make embed: built in-tree against build/libra.a (run it from examples/embed).
$(B)/embed: examples/embed/embed.c include/ra.h $(B)/libra.a
	$(CC) $(CFLAGS_ALL) -Iinclude -o $@ $< $(B)/libra.a $(LIBS)

embed: $(B)/embed

# make embed-check: installs into $(B)/prefix (from its own build folder, so
# the compiled-in paths are the prefix's), builds the example outside the
# tree with pkg-config (shared and static), runs both, and runs the shared
# one under valgrind (20 training steps: valgrind is ~150 times slower).
EMBED_PREFIX := $(abspath $(B))/prefix
VALGRIND ?= valgrind --quiet --leak-check=full --error-exitcode=1 \
            --suppressions=$(abspath tests/valgrind.supp)
embed-check:
	@$(MAKE) --no-print-directory SAN= B=$(B)/embed-build PREFIX=$(EMBED_PREFIX) install >/dev/null
	@set -e; tmp=$$(mktemp -d /tmp/rac-embed.XXXXXX); trap 'rm -rf "$$tmp"' EXIT; \
	cp examples/embed/embed.c examples/embed/embed.ra examples/embed/Makefile "$$tmp"/; \
	cd "$$tmp"; \
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL PKG_CONFIG_PATH=$(EMBED_PREFIX)/lib/pkgconfig \
	    $(MAKE) --no-print-directory embed static >/dev/null; \
	./embed > out.txt || { cat out.txt; exit 1; }; \
	./embed-static > out-static.txt || { cat out-static.txt; exit 1; }; \
	$(VALGRIND) ./embed embed.ra 20 2 > out-vg.txt || { cat out-vg.txt; echo "embed-check: valgrind found errors"; exit 1; }; \
	tail -1 out.txt | grep -qx ok; \
	echo "embed-check: ok (installed in $(EMBED_PREFIX); shared, static and valgrind runs pass)"

clean:
	rm -rf build build-san build-nojit

-include $(wildcard $(B)/*/*.d $(B)/*/*/*.d)

# make jit-config: whether this build has the JIT (for .ci/run)
jit-config:
	@echo $(if $(LLVM_CONFIG),llvm $(shell $(LLVM_CONFIG) --version),none)

# make mpi-config: whether this build has MPI (for .ci/run)
mpi-config:
	@echo '$(if $(filter 1,$(MPI)),mpi $(shell mpicc --showme:version 2>/dev/null || echo ompi-c),none)'
