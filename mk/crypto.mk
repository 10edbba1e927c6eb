# crypto: C unit test of keccak/rlp/u256 cores, and the RLP decoder fuzzer.
#   make ctest-crypto              build (ASan+UBSan) and run tests/c/crypto_test.c
#   make fuzz-rlp [FUZZ_SECONDS=n] libFuzzer on the strict RLP decoder (clang), bounded time
CRYPTO_CORE   := engine/crypto/keccak.c engine/crypto/buf.c engine/crypto/rlp.c engine/crypto/u256.c
CRYPTO_HDRS   := $(wildcard engine/crypto/keccak.h engine/crypto/buf.h engine/crypto/rlp.h engine/crypto/u256.h)
FUZZ_SECONDS  ?= 20

CTESTS        += ctest-crypto
FUZZ_TARGETS  += fuzz-rlp
.PHONY: ctest-crypto fuzz-rlp

build/ctest/crypto_test: tests/c/crypto_test.c $(CRYPTO_CORE) $(CRYPTO_HDRS)
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Werror -Iengine \
	  $(ASAN) -o $@ tests/c/crypto_test.c $(CRYPTO_CORE)

ctest-crypto: build/ctest/crypto_test
	UBSAN_OPTIONS=print_stacktrace=1 ./build/ctest/crypto_test tests/fixtures/vectors

build/fuzz/rlp_fuzz: tests/fuzz/rlp_fuzz.c engine/crypto/rlp.c engine/crypto/buf.c engine/crypto/rlp.h engine/crypto/buf.h
	@mkdir -p $(dir $@)
	clang -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iengine \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -o $@ tests/fuzz/rlp_fuzz.c engine/crypto/rlp.c engine/crypto/buf.c

# Seeds: the committed valid vectors (one file per line of rlp_valid.txt).
build/fuzz/rlp_corpus/.seeded: tests/fixtures/vectors/rlp_valid.txt
	@mkdir -p $(dir $@)
	@while read -r name hex; do \
	  printf '%s' "$${hex#0x}" | xxd -r -p > build/fuzz/rlp_corpus/seed_$$name; \
	done < $<
	@touch $@

fuzz-rlp: build/fuzz/rlp_fuzz build/fuzz/rlp_corpus/.seeded
	./build/fuzz/rlp_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 build/fuzz/rlp_corpus
