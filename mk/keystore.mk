# engine/crypto keystores (keystore.c over key.c): C unit test under ASan+UBSan.
#   make ctest-keystore   build tests/c/keystore_test.c and run it (the committed fixtures' values)
KS_CORE := engine/crypto/keystore.c engine/crypto/key.c engine/crypto/secp.c engine/crypto/tx.c \
           engine/crypto/keccak.c engine/crypto/rlp.c engine/crypto/buf.c engine/crypto/u256.c
KS_DEPS := $(KS_CORE) $(KS_CORE:.c=.h) mk/keystore.mk

.PHONY: ctest-keystore
CTESTS += ctest-keystore

build/ctest/keystore_test: tests/c/keystore_test.c $(KS_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iengine \
	  -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
	  -o $@ tests/c/keystore_test.c $(KS_CORE) -lsecp256k1 -lnettle -lsodium -lm

ctest-keystore: build/ctest/keystore_test
	./build/ctest/keystore_test
