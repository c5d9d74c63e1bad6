# dltrain build. Switches (make VAR=value):
#   GPU=auto|1|0   compile the CUDA objects (*.cu) when nvcc and cuDNN are found (auto)
#   CUDA_ARCH=90   the GPU generation the CUDA code is built for (sm_90 code + compute_90 PTX)
#   ONEDNN=auto|1|0  Convolution's oneDNN engine (libdnnl-dev), when dnnl.h is found (auto)
#   DEBUG=1        -O0 -g
#   SAN=1          AddressSanitizer + UBSan (what `make asan` uses)
#   V=1            print full compiler commands
# Targets: all (./dltrain, and ./dltrain-gpu when GPU=1), test, asan, format, clean, deps (install Debian packages),
#   device (a portable GPU build in build/device for the GPU machine: docs/gpu.md).
# Sources are found by wildcard: a new layer needs no edit here.

GPU ?= auto
CUDA_ARCH ?= 90
DEBUG ?= 0
SAN ?= 0
DEVICE ?= 0
CUDA ?= /usr/local/cuda
NVCC ?= $(CUDA)/bin/nvcc

ifeq ($(GPU),auto)
  GPU := $(shell test -x $(NVCC) && test -f $(CUDA)/include/cudnn.h -o -f /usr/include/cudnn.h -o -f /usr/include/x86_64-linux-gnu/cudnn.h && echo 1 || echo 0)
endif
ifeq ($(SAN),1)
  GPU := 0
endif
ONEDNN ?= auto
ifeq ($(ONEDNN),auto)
  override ONEDNN := $(shell echo '\#include <dnnl.h>' | $(CC) $$(pkg-config --cflags dnnl 2>/dev/null) -E -x c - >/dev/null 2>&1 && echo 1 || echo 0)
endif

CONFIG := $(if $(filter 1,$(DEBUG)),debug,release)$(if $(filter 1,$(SAN)),-san,)$(if $(filter 1,$(GPU)),-gpu,)$(if $(filter 1,$(ONEDNN)),,-noonednn)
ifeq ($(DEVICE),1)
  CONFIG := device
endif
BUILD := build/$(CONFIG)

PKGS := yaml-0.1 libpng zlib openblas
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CC ?= cc
OPT := $(if $(filter 1,$(DEBUG)),-O0 -g,-O2 -g)
CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) -march=x86-64-v2 -mtune=generic -fno-math-errno \
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror \
  -I. $(PKG_CFLAGS) -MMD -MP -pthread
LDLIBS := $(PKG_LIBS) -lm -pthread
ifeq ($(SAN),1)
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(ONEDNN),1)
  # Debian's libdnnl has no .pc file: plain -ldnnl then. -lgomp: omp_set_num_threads
  # (layers/conv_onednn.c keeps oneDNN's OpenMP to one thread per pool thread).
  CFLAGS += -DDL_ONEDNN $(shell pkg-config --cflags dnnl 2>/dev/null)
  LDLIBS += $(shell pkg-config --libs dnnl 2>/dev/null || echo -ldnnl) -lgomp
endif
ifeq ($(GPU),1)
  CFLAGS += -DDL_GPU -I$(CUDA)/include
  NVFLAGS := -O2 -g -std=c++17 -I. -DDL_GPU -DDL_CUDA_ARCH=$(CUDA_ARCH) \
    -gencode arch=compute_$(CUDA_ARCH),code=sm_$(CUDA_ARCH) \
    -gencode arch=compute_$(CUDA_ARCH),code=compute_$(CUDA_ARCH) \
    -Werror all-warnings -Xcompiler -Wall,-Werror -MMD -MP
  LDLIBS += -L$(CUDA)/lib64 -Wl,-rpath,$(CUDA)/lib64 -lcudart -lcublas -lcudnn -lstdc++
endif
# The portable GPU build for the GPU machine (docs/gpu.md): everything but the
# CUDA libraries, libstdc++ and the C runtime linked statically, since that
# machine has no libyaml and no Check; the CUDA libraries are found through
# the run path (CUDA 13 there too; cuDNN from the system) or LD_LIBRARY_PATH.
ifeq ($(DEVICE),1)
  BLAS_STATIC_DIR ?= /usr/lib/x86_64-linux-gnu/openblas-pthread
  CUDA_RUNPATH := $(CUDA)/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib
  LDLIBS := -Wl,-Bstatic -lyaml -lpng16 -lz -L$(BLAS_STATIC_DIR) -lopenblas -lgfortran \
    -lquadmath -Wl,-Bdynamic -L$(CUDA)/lib64 -Wl,-rpath,$(CUDA_RUNPATH) -lcudart -lcublas \
    -lcudnn -lstdc++ -lm -pthread
  CHECK_LIBS := -Wl,-Bstatic -lcheck -lsubunit -Wl,-Bdynamic -lrt
endif

LIB_SRC := $(wildcard core/*.c layers/*.c solvers/*.c io/*.c) $(filter-out cmd/main.c,$(wildcard cmd/*.c))
CU_SRC := $(if $(filter 1,$(GPU)),$(wildcard core/*.cu layers/*.cu solvers/*.cu),)
TEST_SRC := $(wildcard tests/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CU_SRC:%.cu=$(BUILD)/%.cu.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all test asan test-san format clean deps data device device-build
all: dltrain

# With the GPU code built, ./dltrain is still the CPU-only build: it does not
# load the CUDA libraries (about 150 MiB of RSS on every CPU run) and hands a
# command that asks for a GPU (--gpu N, mode: gpu) to ./dltrain-gpu, the GPU
# build beside it (core/device.c). Both come from one `make`.
ifeq ($(GPU)$(DEVICE)$(SAN),100)
CPU_BUILD := build/$(subst -gpu,,$(CONFIG))
.PHONY: cpu-build
dltrain: cpu-build dltrain-gpu
	@cp $(CPU_BUILD)/dltrain $@
	@cp $(BUILD)/dltrain $(CPU_BUILD)/dltrain-gpu
cpu-build:
	@$(MAKE) --no-print-directory GPU=0 $(CPU_BUILD)/dltrain
dltrain-gpu: $(BUILD)/dltrain
	@cp $< $@
else
dltrain: $(BUILD)/dltrain
	@cp $< $@
endif

$(BUILD)/dltrain: $(LIB_OBJ) $(BUILD)/cmd/main.o
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/run_tests: $(LIB_OBJ) $(TEST_OBJ)
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

V ?= 0
Q := $(if $(filter 1,$(V)),,@)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# GCC's -O2 vectorizes only loops whose trip count is known at compile time;
# the dynamic cost model also vectorizes loops of run-time length (bias adds,
# solver updates, copies), with the same results: no reassociation, no
# fast-math. Clang rejects the flag and vectorizes such loops anyway.
ifneq ($(shell $(CC) -v 2>&1 | grep -c '^gcc version'),0)
  CFLAGS += -fvect-cost-model=dynamic
endif

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  NVCC  $<")
	$(Q)$(NVCC) $(NVFLAGS) -c $< -o $@

# The suite runs from the repo root (configs/ and data paths are relative).
# Tests that need the executable (signals, the CLI) use DLTRAIN_BIN.
TEST_ENV := CK_DEFAULT_TIMEOUT=300 DLTRAIN_BIN=$(BUILD)/dltrain \
  $(if $(CPU_BUILD),DLTRAIN_CPU_BIN=$(CPU_BUILD)/dltrain)
# Data sets no Debian package ships, generated once under data/generated/ (git-ignored)
# by the scripts in data/ (CIFAR-format files and a text corpus, from Debian packages).
GEN := data/generated
$(GEN)/cifar-fashion/test_batch.bin: | $(BUILD)/dltrain
	DLTRAIN=$(BUILD)/dltrain sh data/make_cifar_from_fashion.sh $(GEN)/cifar-fashion
$(GEN)/fortunes/vocab.txt: | $(BUILD)/dltrain
	DLTRAIN=$(BUILD)/dltrain sh data/make_text_corpus.sh $(GEN)/fortunes
data: $(GEN)/cifar-fashion/test_batch.bin $(GEN)/fortunes/vocab.txt

test: $(BUILD)/run_tests $(BUILD)/dltrain data $(if $(CPU_BUILD),dltrain)
	$(TEST_ENV) $(BUILD)/run_tests $(if $(SUITE),-s $(SUITE),)

asan:
	$(MAKE) SAN=1 test-san

# build/device/dltrain and build/device/run_tests, for the GPU machine (which has
# no oneDNN: Convolution uses its native engine there).
device:
	$(MAKE) GPU=1 DEVICE=1 ONEDNN=0 device-build
device-build: $(BUILD)/dltrain $(BUILD)/run_tests
	@echo "  portable GPU build in $(BUILD); dynamic libraries:"
	@ldd $(BUILD)/dltrain | sed 's/ (0x.*//; s/^/    /'

test-san: $(BUILD)/run_tests $(BUILD)/dltrain data
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 DLTRAIN_QUICK=1 \
	  $(TEST_ENV) $(BUILD)/run_tests $(if $(SUITE),-s $(SUITE),)

format:
	clang-format -i $(wildcard */*.c */*.h */*.cu */*.cuh)

deps:
	bash scripts/setup.sh

clean:
	rm -rf build dltrain dltrain-gpu

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/cmd/main.d
