# engine/core: libFuzzer on the JSON decoder (through its Lua API: it builds Lua values directly).
#   make fuzz-json [FUZZ_SECONDS=n]   decode, encode, decode again: no crash, a fixed point
JSON_FUZZ_SRC := engine/core/json.c engine/core/bind.c
JSON_FUZZ_DEPS := $(JSON_FUZZ_SRC) engine/core/bind.h engine/core/utf8.h engine/crypto/hex.h mk/core.mk
FUZZ_SECONDS ?= 20

.PHONY: fuzz-json
FUZZ_TARGETS += fuzz-json

build/fuzz/json_fuzz: tests/fuzz/json_fuzz.c $(JSON_FUZZ_DEPS)
	@mkdir -p $(dir $@)
	clang -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iengine \
	  $(shell pkg-config --cflags lua5.4) -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=undefined -o $@ tests/fuzz/json_fuzz.c $(JSON_FUZZ_SRC) \
	  $(shell pkg-config --libs lua5.4) -lm

# Seeds: a few JSON-RPC shaped replies, big numbers, escapes and nesting.
build/fuzz/json_corpus/.seeded: mk/core.mk
	@mkdir -p $(dir $@)
	@printf '%s' '{"jsonrpc":"2.0","id":1,"result":"0x1b4"}' > build/fuzz/json_corpus/seed_rpc
	@printf '%s' '{"id":7,"error":{"code":-32000,"message":"nonce too low","data":null}}' > build/fuzz/json_corpus/seed_err
	@printf '%s' '[1,-0,1.5e300,18446744073709551616,-9223372036854775808,null,true,false,[],{}]' > build/fuzz/json_corpus/seed_num
	@printf '%s' '["\u00e9\ud83d\ude00\n\t\"\\/",{"a":{"b":[[["x"]]]}}]' > build/fuzz/json_corpus/seed_str
	@touch $@

fuzz-json: build/fuzz/json_fuzz build/fuzz/json_corpus/.seeded
	./build/fuzz/json_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 build/fuzz/json_corpus

# engine/core/dotenv.c alone (ASan+UBSan): the .env line parser and loader
CTESTS += ctest-dotenv
.PHONY: ctest-dotenv
build/ctest/dotenv_test: tests/c/dotenv_test.c engine/core/dotenv.c engine/core/dotenv.h
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Werror -Iengine \
	  $(ASAN) -o $@ tests/c/dotenv_test.c engine/core/dotenv.c

ctest-dotenv: build/ctest/dotenv_test
	UBSAN_OPTIONS=print_stacktrace=1 ./build/ctest/dotenv_test
