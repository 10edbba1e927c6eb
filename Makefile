# ferry -- build, test, check, bench, demo.  `make help` lists the targets.
PKGS    := lua5.4 libuv libcurl hiredis libwebsockets libsecp256k1 nettle libsodium sqlite3 libedit
CC      ?= cc
OPT     ?= -O2
CFLAGS  += $(OPT) -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iengine \
           $(shell pkg-config --cflags $(PKGS))
LDFLAGS += -Wl,-E
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lm

SRC     := $(sort $(wildcard engine/*.c engine/*/*.c))
OBJ     := $(SRC:%.c=build/rel/%.o)
ASAN_OBJ:= $(SRC:%.c=build/asan/%.o)
ASAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all deps test check lint bench demo fuzz ctest clean help peers install docs
all: ferry

# Module-owned fragments add C unit tests (CTESTS) and fuzz targets (FUZZ_TARGETS)
CTESTS :=
FUZZ_TARGETS :=
FUZZ_SECONDS ?= 20
include $(sort $(wildcard mk/*.mk))

ferry: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/rel/%.o: %.c $(wildcard engine/*.h engine/*/*.h engine/modules.def)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

build/asan/ferry: $(ASAN_OBJ)
	$(CC) $(LDFLAGS) $(ASAN) -o $@ $^ $(LDLIBS)

build/asan/%.o: %.c $(wildcard engine/*.h engine/*/*.h engine/modules.def)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(ASAN) -c -o $@ $<

help:
	@echo "make deps    install Debian packages and the pinned npm test peers (root, idempotent)"
	@echo "make         build ./ferry"
	@echo "make test    run every spec (unit + integration; starts its own peers)"
	@echo "make check   luacheck, then the same suite under ASan+UBSan"
	@echo "make lint    luacheck over every Lua file of the repository"
	@echo "make bench   benchmarks against the Node libraries, printed as ratios"
	@echo "make demo    local anvil + examples/batch_payouts.lua for 200 recipients (PEER=hardhat: hardhat's node)"
	@echo "make fuzz    libFuzzer on the decoders, bounded time"
	@echo "make install PREFIX=/usr/local   the binary in PREFIX/bin, its stdlib in PREFIX/share/ferry"
	@echo "make docs    docs/api.md and docs/config.md from the stdlib's annotations and the config schema (fails on a gap)"

deps:
	./tests/peers/install-deps.sh

peers: tests/peers/node_modules/.package-lock.json
tests/peers/node_modules/.package-lock.json: tests/peers/package.json tests/peers/package-lock.json
	./tests/peers/npm-install.sh

# the C cores' own tests (under ASan+UBSan), then every busted spec inside ./ferry
test: ferry peers ctest
	./ferry tests/run.lua

ctest: $(CTESTS)

fuzz: $(FUZZ_TARGETS)

# the suite under ASan+UBSan: unit specs with an aggressive GC (as luv's CI does), the
# integration specs (real peers, timing) with the normal one; any report fails the run
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
check: lint build/asan/ferry peers ctest
	$(ASAN_ENV) FERRY_GC=aggressive build/asan/ferry tests/run.lua --run=unit
	$(ASAN_ENV) build/asan/ferry tests/run.lua --run=integration

# the API reference from the stdlib's ---@ annotations, the config reference from the schema;
# fails, naming each, on a public function without annotation or a config key without doc
docs: ferry
	./ferry tools/docs.lua

# luacheck (.luacheckrc): unused variables, shadowing, accidental globals
lint:
	luacheck -q --no-color .

bench: ferry peers
	./ferry bench/run.lua

# PEER=hardhat runs it on hardhat's node instead of anvil
PEER ?= anvil
demo: ferry peers
	./ferry tests/helpers/with_anvil.lua --peer $(PEER) examples/batch_payouts.lua 200

# PREFIX/bin/ferry finds PREFIX/share/ferry/stdlib by itself (engine/core/engine.c find_home)
PREFIX ?= /usr/local
SHARE  := $(DESTDIR)$(PREFIX)/share/ferry
install: ferry
	install -d $(DESTDIR)$(PREFIX)/bin $(SHARE)
	install -m 755 ferry $(DESTDIR)$(PREFIX)/bin/ferry
	rm -rf $(SHARE)/stdlib $(SHARE)/policies
	cp -R stdlib $(SHARE)/stdlib
	if [ -d policies ]; then cp -R policies $(SHARE)/policies; fi

clean:
	rm -rf build ferry
