# engine/crypto Solana layer (base58.c, ed25519.c, sol.c): libFuzzer harnesses, seeds, specs.
#   make ctest-sol     tests/c/sol_test.c under ASan+UBSan (web3.js vectors in c_vectors.txt)
#   make fuzz-sol-tx   libFuzzer on the strict transaction decoder (seeded with the web3.js vectors)
#   make fuzz-sol-b58  libFuzzer on base58 (decode strict and bijective, encode round trips)
#   make spec-sol      the crypto spec inside ./ferry (1,000 web3.js vectors, no node needed)
SOL_CORE   := engine/crypto/base58.c engine/crypto/ed25519.c engine/crypto/sol.c engine/crypto/buf.c
SOL_DEPS   := $(SOL_CORE) $(SOL_CORE:.c=.h) mk/sol.mk
SOL_FIXTURE := tests/fixtures/solana/tx_web3.json
FUZZ_SECONDS ?= 20

.PHONY: ctest-sol fuzz-sol-tx fuzz-sol-b58 spec-sol
CTESTS += ctest-sol
FUZZ_TARGETS += fuzz-sol-tx fuzz-sol-b58

build/ctest/sol_test: tests/c/sol_test.c $(SOL_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Werror -Iengine -Itests/c \
	  -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
	  -o $@ tests/c/sol_test.c $(SOL_CORE) -lsodium

ctest-sol: build/ctest/sol_test
	./build/ctest/sol_test tests/fixtures/solana/c_vectors.txt

SOL_FUZZ_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iengine \
                   -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
build/fuzz/sol_%_fuzz: tests/fuzz/sol_%_fuzz.c $(SOL_DEPS)
	@mkdir -p $(dir $@)
	clang $(SOL_FUZZ_CFLAGS) -o $@ $< $(SOL_CORE) -lsodium

# seed with every wire transaction of the fixture (valid inputs reach the deep decoder paths)
build/fuzz/sol_tx_corpus/.seeded: $(SOL_FIXTURE)
	@mkdir -p $(dir $@)
	@grep -o '"wire":"[^"]*"' $< | sed 's/"wire":"//; s/"//' | head -200 | \
	  awk '{ f = sprintf("build/fuzz/sol_tx_corpus/seed%04d", NR); print $$0 | ("base64 -d > " f); close("base64 -d > " f) }'
	@touch $@

fuzz-sol-tx: build/fuzz/sol_tx_fuzz build/fuzz/sol_tx_corpus/.seeded
	./build/fuzz/sol_tx_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=1232 -print_final_stats=1 build/fuzz/sol_tx_corpus

fuzz-sol-b58: build/fuzz/sol_b58_fuzz
	@mkdir -p build/fuzz/sol_b58_corpus
	./build/fuzz/sol_b58_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=512 -print_final_stats=1 build/fuzz/sol_b58_corpus

spec-sol: ferry
	./ferry tests/run.lua tests/unit/sol_tx_spec.lua

# `make demo` runs both chains' payouts: this adds the Solana one (a local litesvm peer) to it
.PHONY: demo-sol
demo: demo-sol
demo-sol: ferry peers
	./ferry tests/helpers/with_solana.lua examples/sol_batch_payouts.lua 200
