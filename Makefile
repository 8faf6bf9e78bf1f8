# sllm — GNU Make build. `make` -> build/sllm + build/libsllm.a; `make test`; `make asan`; `make bench`.
CC      ?= cc
BUILD   ?= build
PKGS    := jansson libpcre2-8 libutf8proc openblas
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT     ?= -O2 -g
CFLAGS  += -std=c11 $(OPT) -Wall -Wextra -Werror -D_GNU_SOURCE -fno-strict-aliasing -pthread \
           -Iinclude -Isrc $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lm -pthread $(EXTRA_LDFLAGS)

# SIMD kernels live in files named *_avx2.c / *_avx512.c and are compiled with the matching ISA flags;
# everything else is baseline x86-64 so the binary runs anywhere and dispatches at run time.
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16

LIB_SRC  := $(shell find src -name '*.c' ! -path 'src/cli/*' | sort)
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests -maxdepth 1 -name 'test_*.c' | sort)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all test asan bench demo clean check-full deps
all: $(BUILD)/libsllm.a $(BUILD)/sllm

$(BUILD)/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libsllm.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/sllm: $(CLI_OBJ) $(BUILD)/libsllm.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsllm.a $(LDLIBS)
$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libsllm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libsllm.a $(LDLIBS)

test: all $(TEST_BIN)
	@BUILD=$(BUILD) scripts/run-tests.sh

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer, in a separate build dir.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	        EXTRA_LDFLAGS="-fsanitize=address,undefined" SLLM_ASAN=1 test

# Inference vs llama.cpp, then training vs PyTorch (same machine, same run, same threads).
$(BUILD)/pingpong: bench/pingpong.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -pthread
$(BUILD)/bench_iq: bench/bench_iq.c $(BUILD)/libsllm.a
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libsllm.a $(LDLIBS) -ldl
bench: all $(BUILD)/pingpong $(BUILD)/bench_iq
	@BUILD=$(BUILD) bench/run-bench.sh
	@# the other families at Q8_0 / Q4_0 (Gemma's file with the llama-spm vocabulary padded to its 262144 rows)
	@BUILD=$(BUILD) BENCH_TAG=families BENCH_MODELS="gemma3:gemma-3-1b:llama-spm gpt2:gpt2-124m:gpt-2 qwen2:qwen2.5-0.5b:qwen2" \
		BENCH_TYPES="$${BENCH_FAMILY_TYPES:-q8_0 q4_0}" bench/run-bench.sh
	@# on an AVX-512 CPU, also as on one without it (both engines at AVX2: most laptops)
	@if grep -qw avx512f /proc/cpuinfo; then BUILD=$(BUILD) BENCH_ISA=avx2 BENCH_TYPES="$${BENCH_TYPES:-f16 q8_0 q4_0 q4_k_m}" bench/run-bench.sh; fi
	@# the KV cache types at a 2048-token prompt (f16, q8_0) against llama.cpp's -ctk / -ctv
	@BUILD=$(BUILD) bench/run-kv.sh
	@# the grid types' decode kernels against llama.cpp's own
	@BUILD=$(BUILD) bench/run-iq.sh
	@BUILD=$(BUILD) bench/bench_train.sh

check-full: test
	@BUILD=$(BUILD) SLLM_FULL=1 scripts/run-tests.sh

demo:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

deps:
	@scripts/deps.sh

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
