# engine/net/ws + ferry.ws: libFuzzer on the message handler (frame text -> JSON-RPC dispatch).
#   make fuzz-ws [FUZZ_SECONDS=n]
WS_FUZZ_SRC  := engine/core/json.c engine/core/bind.c
WS_FUZZ_DEPS := $(WS_FUZZ_SRC) engine/core/bind.h engine/core/utf8.h engine/crypto/hex.h stdlib/ferry/ws.lua mk/ws.mk
FUZZ_SECONDS ?= 20

.PHONY: fuzz-ws
FUZZ_TARGETS += fuzz-ws

build/fuzz/ws_fuzz: tests/fuzz/ws_fuzz.c $(WS_FUZZ_DEPS)
	@mkdir -p $(dir $@)
	clang -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iengine \
	  $(shell pkg-config --cflags lua5.4) -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=undefined -o $@ tests/fuzz/ws_fuzz.c $(WS_FUZZ_SRC) \
	  $(shell pkg-config --libs lua5.4) -lm

# Seeds: a reply, an error reply, a notification, an unknown one, a batch, garbage.
build/fuzz/ws_corpus/.seeded: mk/ws.mk
	@mkdir -p $(dir $@)
	@printf '%s' '{"jsonrpc":"2.0","id":1,"result":"0x5a50"}' > build/fuzz/ws_corpus/seed_reply
	@printf '%s' '{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"bad"}}' > build/fuzz/ws_corpus/seed_err
	@printf '%s' '{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"number":"0x1"}}}' > build/fuzz/ws_corpus/seed_note
	@printf '%s' '{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x9","result":null}}' > build/fuzz/ws_corpus/seed_unknown
	@printf '%s' '[{"jsonrpc":"2.0","id":1,"result":true},{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x3","result":1}}]' > build/fuzz/ws_corpus/seed_batch
	@printf '%s' '{"jsonrpc":"2.0", this is not json' > build/fuzz/ws_corpus/seed_garbage
	@touch $@

fuzz-ws: build/fuzz/ws_fuzz build/fuzz/ws_corpus/.seeded
	./build/fuzz/ws_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 build/fuzz/ws_corpus
