# engine/crypto EVM layer (secp.c, abi.c, tx.c): C unit test, libFuzzer harnesses, throwaway Lua modules.
#   make ctest-evm    build tests/c/evm_test.c under ASan+UBSan and run it (1000 cast vectors, no cast needed)
#   make fuzz-abi     libFuzzer on the ABI parser/decoder for $(FUZZ_SECONDS) s (default 20)
#   make fuzz-tx      libFuzzer on the tx decoder (seeded with the fixture's raw txs)
#   make spec-evm     run the secp256k1/abi/tx busted specs inside ./ferry
EVM_CORE   := engine/crypto/secp.c engine/crypto/abi.c engine/crypto/tx.c engine/crypto/keccak.c \
              engine/crypto/rlp.c engine/crypto/buf.c engine/crypto/u256.c
EVM_DEPS   := $(EVM_CORE) $(EVM_CORE:.c=.h) mk/evm.mk
EVM_WARN   := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iengine
EVM_LIBS   := -lsecp256k1 -lnettle
FUZZ_SECONDS ?= 20
EVM_FIXTURE := tests/fixtures/vectors/tx_cast.json

.PHONY: ctest-evm fuzz-abi fuzz-tx spec-evm
CTESTS += ctest-evm
FUZZ_TARGETS += fuzz-abi fuzz-tx

build/ctest/evm_test: tests/c/evm_test.c $(EVM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(EVM_WARN) -fsanitize=address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=undefined -o $@ tests/c/evm_test.c $(EVM_CORE) $(EVM_LIBS) -lm

ctest-evm: build/ctest/evm_test
	./build/ctest/evm_test $(EVM_FIXTURE)

EVM_FUZZ_CFLAGS := -O1 -g $(EVM_WARN) -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
                   -fno-sanitize-recover=undefined
build/fuzz/%_fuzz: tests/fuzz/%_fuzz.c $(EVM_DEPS)
	@mkdir -p $(dir $@)
	clang $(EVM_FUZZ_CFLAGS) -o $@ $< $(EVM_CORE) $(EVM_LIBS) -lm

fuzz-abi: build/fuzz/abi_fuzz
	@mkdir -p build/fuzz/abi_corpus
	./build/fuzz/abi_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build/fuzz/abi_corpus

# seed with every raw tx of the fixture (valid inputs reach the deep decoder paths at once)
fuzz-tx: build/fuzz/tx_fuzz
	@mkdir -p build/fuzz/tx_corpus
	@grep -o '"raw":"0x[0-9a-f]*"' $(EVM_FIXTURE) | sed 's/"raw":"0x//; s/"//' | \
	  awk '{ f = sprintf("build/fuzz/tx_corpus/seed%04d", NR); print $$0 | ("xxd -r -p > " f); close("xxd -r -p > " f) }'
	./build/fuzz/tx_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build/fuzz/tx_corpus

# the busted specs of the three bindings, inside the engine (./ferry tests/run.lua runs them too)
spec-evm: ferry
	./ferry tests/run.lua tests/unit/secp256k1_spec.lua tests/unit/abi_spec.lua tests/unit/tx_spec.lua
