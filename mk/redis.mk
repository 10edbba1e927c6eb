# engine/net/redis: C tests against a real redis-server (started by the test itself).
#   make ctest-redis   build tests/c/redis_test.c under ASan+UBSan and run it
REDIS_CORE := engine/net/redis.c
REDIS_WARN := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iengine

.PHONY: ctest-redis
CTESTS += ctest-redis

build/ctest/redis_test: tests/c/redis_test.c $(REDIS_CORE) engine/net/redis.h mk/redis.mk
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(REDIS_WARN) $(shell pkg-config --cflags libuv hiredis) -fsanitize=address,undefined \
	  -fno-omit-frame-pointer -fno-sanitize-recover=undefined -o $@ tests/c/redis_test.c $(REDIS_CORE) \
	  $(shell pkg-config --libs libuv hiredis)

ctest-redis: build/ctest/redis_test
	./build/ctest/redis_test
