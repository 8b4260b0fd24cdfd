# fuzz.mk - builds the front-end fuzz target with clang and libFuzzer.
#
#   make -f tests/fuzz/fuzz.mk [B=build]     (or: make fuzz)
#
# The lexer and parser are generated again into $(B)/fuzz/gen so the target
# does not depend on the main build's flags.

B      ?= build
FB     := $(B)/fuzz
CLANG  ?= clang
RE2C   ?= re2c
LEMON  ?= lemon
LEMPAR ?= $(firstword $(wildcard /usr/share/lemon/lempar.c))

FUZZ_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -g -O2 \
               -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined -Wall -Wextra -Wno-unused-parameter \
               -Wno-unused-function -Wno-unused-variable -Wno-sign-compare \
               -Ilang -I$(FB)/gen
LANG_C := $(wildcard base/*.c lang/*.c)
LANG_H := $(wildcard base/*.h lang/*.h lang/*.def)

.PHONY: all
all: $(FB)/fuzz_frontend $(FB)/fuzz_check

COMP_C := $(wildcard compiler/*.c)
COMP_H := $(wildcard compiler/*.h compiler/*.def)

$(FB)/gen/parser.c $(FB)/gen/parser.h: lang/parser.y
	@mkdir -p $(FB)/gen
	$(LEMON) -q -d$(FB)/gen $(if $(LEMPAR),-T$(LEMPAR)) lang/parser.y

$(FB)/gen/lexer.c: lang/lexer.re $(FB)/gen/parser.h
	@mkdir -p $(FB)/gen
	$(RE2C) -W --no-generation-date -o $@ lang/lexer.re

$(FB)/fuzz_frontend: tests/fuzz/fuzz_frontend.c $(LANG_C) $(LANG_H) $(FB)/gen/lexer.c $(FB)/gen/parser.c
	$(CLANG) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_frontend.c $(LANG_C) $(FB)/gen/lexer.c $(FB)/gen/parser.c

$(FB)/fuzz_check: tests/fuzz/fuzz_check.c $(LANG_C) $(LANG_H) $(COMP_C) $(COMP_H) $(FB)/gen/lexer.c $(FB)/gen/parser.c
	$(CLANG) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_check.c $(LANG_C) $(COMP_C) $(FB)/gen/lexer.c $(FB)/gen/parser.c -lm
