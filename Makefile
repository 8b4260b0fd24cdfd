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
RE2C    ?= re2c
LEMON   ?= lemon
LEMPAR  ?= $(firstword $(wildcard /usr/share/lemon/lempar.c /usr/share/lemon/lempar.c))

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
CFLAGS_ALL := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(OPT) $(WARN) -fPIC -fopenmp $(CFLAGS)
LIBCFLAGS := $(CFLAGS_ALL) -fvisibility=hidden -DRA_BUILDING_LIB -DRA_STDLIB_DIR=\"$(PREFIX)/share/rac/stdlib\" -I$(B)/lang -Iinclude
LIBS     := -lopenblas -lffi -ljansson -ldl -lm -fopenmp $(LDSAN)

LANG_SRC := $(wildcard lang/*.c)
COMP_SRC := $(wildcard compiler/*.c)
RT_SRC   := $(wildcard runtime/*.c)
LIB_OBJ  := $(patsubst %.c,$(B)/%.o,$(LANG_SRC) $(COMP_SRC) $(RT_SRC)) \
            $(B)/lang/lexer.o $(B)/lang/parser.o
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))

.PHONY: all test test-unit clean install data fuzz bench
all: $(B)/libra.a $(B)/libra.so $(B)/rac

$(B)/lang/parser.c $(B)/lang/parser.h: lang/parser.y
	@mkdir -p $(B)/lang
	$(LEMON) -q -d$(B)/lang $(if $(LEMPAR),-T$(LEMPAR)) lang/parser.y

$(B)/lang/lexer.c: lang/lexer.re $(B)/lang/parser.h
	@mkdir -p $(B)/lang
	$(RE2C) -W --no-generation-date -o $@ lang/lexer.re

$(B)/lang/lexer.o: $(B)/lang/lexer.c
	$(CC) $(LIBCFLAGS) -Ilang -MMD -MP -Wno-unused-function -c -o $@ $<

$(B)/lang/parser.o: $(B)/lang/parser.c
	$(CC) $(LIBCFLAGS) -Ilang -MMD -MP -Wno-unused-parameter -Wno-unused-variable -Wno-sign-compare -c -o $@ $<

$(B)/%.o: %.c $(B)/lang/parser.h
	@mkdir -p $(dir $@)
	$(CC) $(LIBCFLAGS) -MMD -MP -c -o $@ $<

$(B)/libra.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/libra.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libra.so.0 -o $@ $^ $(LIBS)

$(B)/rac: cli/rac.c include/ra.h $(B)/libra.a
	$(CC) $(CFLAGS_ALL) -Iinclude -o $@ cli/rac.c $(B)/libra.a $(LIBS)

# Tests see everything; each suite is one binary.
$(B)/tests/%: tests/%.c tests/testutil.h $(B)/libra.a
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS_ALL) -Iinclude -I$(B)/lang -o $@ $< $(B)/libra.a $(LIBS) -lcriterion

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

clean:
	rm -rf build build-san

-include $(wildcard $(B)/*/*.d)
