# engine/prim (ratelimit, cache, health): C unit tests, micro benchmark, throwaway Lua modules.
#   make ctest-prim   build tests/c/prim_test.c under ASan+UBSan and run it
#   make bench-prim   build bench/prim_bench.c at -O2 and run it
#   make spec-prim    build the three bindings as .so files and run their busted specs with
#                     lua5.4 (stopgap while ./ferry tests/run.lua is not there)
PRIM_CORE  := engine/prim/ratelimit.c engine/prim/cache.c engine/prim/health.c
PRIM_DEPS  := $(PRIM_CORE) $(PRIM_CORE:.c=.h) mk/prim.mk
PRIM_WARN  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iengine

.PHONY: ctest-prim bench-prim spec-prim
CTESTS += ctest-prim

build/ctest/prim_test: tests/c/prim_test.c $(PRIM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(PRIM_WARN) -fsanitize=address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=undefined -o $@ tests/c/prim_test.c $(PRIM_CORE) -lm

ctest-prim: build/ctest/prim_test
	./build/ctest/prim_test

build/bench/prim_bench: bench/prim_bench.c $(PRIM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -O2 -g $(PRIM_WARN) -o $@ bench/prim_bench.c $(PRIM_CORE) -lm

bench-prim: build/bench/prim_bench
	./build/bench/prim_bench

PRIM_LUA_CFLAGS := -O2 -g $(PRIM_WARN) -shared -fPIC $(shell pkg-config --cflags lua5.4 libuv 2>/dev/null)
build/luaso/ferry/core/%.so: engine/prim/%_lua.c engine/prim/%.c engine/prim/%.h
	@mkdir -p $(dir $@)
	$(CC) $(PRIM_LUA_CFLAGS) -o $@ $(filter %.c,$^) -luv -lm

# An empty busted config: the repo's .busted helper needs the engine (ferry.core.task).
spec-prim: build/luaso/ferry/core/ratelimit.so build/luaso/ferry/core/cache.so build/luaso/ferry/core/health.so
	@echo 'return {}' > build/luaso/busted.lua
	lua5.4 -e 'package.cpath="$(CURDIR)/build/luaso/?.so;"..package.cpath' /usr/bin/busted \
	  -f build/luaso/busted.lua \
	  tests/unit/ratelimit_spec.lua tests/unit/cache_spec.lua tests/unit/health_spec.lua
