# galnn — build, test, demo, bench.  `make help` lists the targets.
CC      ?= gcc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fopenmp -MMD -MP
# OpenBLAS's OpenMP build: our OpenMP loops and its GEMMs then share one thread
# pool. With the default pthread build the two pools spin against each other
# and two threads ran slower than one (README, "Threads").
ARCH    := $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
BLASDIR = /usr/lib/$(ARCH)/openblas-openmp
CFLAGS  += -I/usr/include/$(ARCH)/openblas-openmp
LDLIBS  = -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas -lcfitsio -lstb -lcairo -lz -lm
LDFLAGS += -fopenmp
# MPI (`mpirun -np P galnn ...`): built with mpicc when OpenMPI is installed (GN_MPI=0 builds without);
# the same binary runs as one process when started without a launcher.
MPICC   := $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
ifneq ($(GN_MPI),0)
CC      := mpicc
CFLAGS  += -DGN_MPI
endif
endif
SAN     = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_DIRS = common nn io stats models
LIB_SRC  = $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
APP_SRC  = $(wildcard apps/*.c apps/pipeline/*.c)
TEST_SRC = $(wildcard tests/test_*.c)
TEST_UTIL = $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
BENCH_SRC = $(wildcard bench/*.c)

B = build
LIB_OBJ  = $(LIB_SRC:%.c=$(B)/obj/%.o)
APP_OBJ  = $(APP_SRC:%.c=$(B)/obj/%.o)
TESTS    = $(TEST_SRC:tests/%.c=$(B)/tests/%)
UTIL_OBJ = $(TEST_UTIL:%.c=$(B)/obj/%.o)
BENCHES  = $(BENCH_SRC:bench/%.c=$(B)/bench/%)

# The same code under AddressSanitizer + UndefinedBehaviorSanitizer.
SLIB_OBJ  = $(LIB_SRC:%.c=$(B)/san/%.o)
SUTIL_OBJ = $(TEST_UTIL:%.c=$(B)/san/%.o)
STESTS    = $(TEST_SRC:tests/%.c=$(B)/san/tests/%)

# make bench on a CPU with AVX-512: train_bench as built for one without (NN_MAX_ISA_AVX2: the kernels and
# transforms an AVX2 + FMA machine runs), next to PyTorch limited to AVX2 too.
ALIB_OBJ  = $(LIB_SRC:%.c=$(B)/avx2/%.o)

.PHONY: all deps test test-fast test-san demo bench build clean help fuzz install parity
.SECONDARY:
# Each entry point first makes sure the packages are there, then builds in a
# sub-make, so the order holds even under make -j.
all:
	@sh tools/deps.sh openmpi-bin libopenmpi-dev
	@$(MAKE) --no-print-directory build

build: bin/galnn

help:
	@echo "make            build bin/galnn and $(B)/libgalnn.a"
	@echo "make demo       train on the built-in demo data"
	@echo "make test       install missing Debian packages (root), build, run all tests, then the unit tests under ASan+UBSan"
	@echo "make bench      benchmarks (not part of make test)"
	@echo "make fuzz       run every parser under libFuzzer for FUZZ_SECONDS (default 60) each"
	@echo "make install    PREFIX=/usr/local: bin/galnn, the presets (share/galnn/models), the man page"

deps:
	@sh tools/deps.sh

$(B)/libgalnn.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	ar rcs $@ $^

bin/galnn: $(APP_OBJ) $(B)/libgalnn.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(APP_OBJ) $(B)/libgalnn.a $(LDLIBS)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/tests/%: $(B)/obj/tests/%.o $(UTIL_OBJ) $(B)/libgalnn.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(UTIL_OBJ) $(B)/libgalnn.a -lcmocka $(LDLIBS)

$(B)/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) -c -o $@ $<

$(B)/avx2/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DNN_MAX_ISA_AVX2 -c -o $@ $<

$(B)/avx2/bench/%: $(B)/avx2/bench/%.o $(ALIB_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(ALIB_OBJ) $(LDLIBS)

$(B)/san/tests/%: $(B)/san/tests/%.o $(SUTIL_OBJ) $(SLIB_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(SAN) -o $@ $< $(SUTIL_OBJ) $(SLIB_OBJ) -lcmocka $(LDLIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(B)/libgalnn.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(B)/libgalnn.a $(LDLIBS)

# Tests run from the project root (they read tests/data/). Every test binary
# runs even if an earlier one fails; the target fails if any did.
# Everything is built first on every core (the sanitizer build of the product kernels alone takes ~45 s),
# then the tests run one program at a time.
JOBS := $(shell nproc 2>/dev/null || echo 2)
test:
	@sh tools/deps.sh python3-numpy openmpi-bin libopenmpi-dev
	@$(MAKE) --no-print-directory -j$(JOBS) bin/galnn $(TESTS) $(BENCHES) $(STESTS)
	@$(MAKE) --no-print-directory test-fast
	@$(MAKE) --no-print-directory test-san

# (the benchmarks are built too, not run: make bench must keep compiling)
test-fast: bin/galnn $(TESTS) $(BENCHES)
	@sh tests/run.sh $(TESTS)

# Sanitizer pass: unit tests only (GALNN_SAN=1 lets long training tests scale down).
test-san: $(STESTS)
	@echo "== unit tests under ASan+UBSan =="
	@GALNN_SAN=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh $(STESTS)

demo:
	@sh tools/deps.sh
	@$(MAKE) --no-print-directory build
	./bin/galnn demo

bench:
	@sh tools/deps.sh
	@$(MAKE) --no-print-directory $(BENCHES)
	@if grep -q avx512f /proc/cpuinfo; then \
	    $(MAKE) --no-print-directory -j$(JOBS) $(B)/avx2/bench/train_bench; fi
	@sh bench/run.sh

# galnn against PyTorch on a mock survey (tools/parity.py): bench/parity/RESULTS.md; not part of make test.
parity: bin/galnn
	@sh tools/deps.sh python3-torch python3-numpy
	@/usr/bin/python3 tools/parity.py $(PARITY_ARGS)

# libFuzzer targets (tests/fuzz), FUZZ_SECONDS each (default 60); not part of make test.
fuzz:
	@sh tools/deps.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory build
	@sh tools/fuzz.sh

# The binary, the presets (found by name: --config ugriz_mlp) and galnn(1) from the help texts.
PREFIX ?= /usr/local
install: all
	install -D -m 755 bin/galnn $(DESTDIR)$(PREFIX)/bin/galnn
	install -d $(DESTDIR)$(PREFIX)/share/galnn/models $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 models/*.cfg $(DESTDIR)$(PREFIX)/share/galnn/models/
	sh tools/man.sh bin/galnn > $(B)/galnn.1
	install -m 644 $(B)/galnn.1 $(DESTDIR)$(PREFIX)/share/man/man1/galnn.1

clean:
	rm -rf $(B) bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
