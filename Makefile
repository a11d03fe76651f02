# rlprice - reinforcement-learning dynamic pricing engine.
#   make            build ./rlprice and the test binaries (installs Debian deps if missing, as root)
#   make test       build and run every test (starts a throwaway PostgreSQL cluster)
#   make demo       the main job on the Dominick's orange-juice data
#   make asan       build and run the tests with AddressSanitizer + UBSan (in build-asan/)
#   make bench      run every benchmark
#   NO_CUDA=1       build without the CUDA backend
#   NO_MPI=1        build without MPI (one process; `mpirun -np K ./rlprice nightly` needs it, docs/mpi.md)
# In CI (CI=true) warnings are errors.

BUILD   ?= build
CC      ?= cc
MODULES := engine engine/runtime data features env agents \
           experiments/ope experiments/compare experiments/nightly experiments/report \
           experiments/bench experiments/backtest experiments/cmd
SAN     ?=

# ---- top-level targets: make sure the Debian packages exist, then build in a sub-make so
# that pkg-config is evaluated after any install.
.PHONY: all deps build test demo asan bench clean help
all: deps
	@$(MAKE) --no-print-directory build

deps:
	@scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) tests/run_tests.sh

asan: deps
	@$(MAKE) --no-print-directory build BUILD=build-asan NO_CUDA=1 SAN=1
	@BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run_tests.sh

demo: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory build
	./rlprice bench all

clean:
	rm -rf build build-asan rlprice

ifneq ($(MAKECMDGOALS),)
ifeq ($(filter build,$(MAKECMDGOALS)),build)
BUILDING := 1
endif
endif

ifdef BUILDING
# ---- optional parts, detected once and reported ----
PKGS := openblas hdf5 libpq cmocka json-c zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifeq ($(PKG_LIBS),)
$(error pkg-config could not find $(PKGS); run `make deps` (as root) first)
endif

# nvcc may be a wrapper script (e.g. /usr/local/bin/nvcc) far from the toolkit, so the toolkit root
# is asked of nvcc itself (`--dryrun` prints TOP=...), and the libraries are looked for in the layouts
# NVIDIA and distributions use (lib64, lib, targets/<arch>/lib).
CUDA_HOME ?= /usr/local/cuda
NVCC := $(shell ( [ -x $(CUDA_HOME)/bin/nvcc ] && echo $(CUDA_HOME)/bin/nvcc ) || command -v nvcc 2>/dev/null)
ifneq ($(NVCC),)
CUDA_TOP := $(shell $(NVCC) --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^\#\$$ TOP=//p' | head -n1)
CUDA_TOP := $(if $(CUDA_TOP),$(realpath $(CUDA_TOP)),$(realpath $(dir $(NVCC))..))
CUDA_LIBDIR := $(firstword $(foreach d,lib64 lib targets/x86_64-linux/lib targets/sbsa-linux/lib,\
                 $(if $(wildcard $(CUDA_TOP)/$(d)/libcublas.so),$(CUDA_TOP)/$(d))))
CUDA_INCDIR := $(firstword $(foreach d,include targets/x86_64-linux/include targets/sbsa-linux/include,\
                 $(if $(wildcard $(CUDA_TOP)/$(d)/cuda_runtime.h),$(CUDA_TOP)/$(d))))
endif
# Device code for the GPUs users are likely to have: Volta (sm_70), Turing (75), Ampere (80, 86),
# Ada (89), Hopper (90), plus compute_90 PTX that the driver compiles for anything newer
# (Blackwell).  CUDA_ARCHS overrides the list; the architectures this nvcc cannot build (CUDA 13
# dropped sm_70) are left out and the found-line says so.  About 25 s of nvcc on 2 cores.
CUDA_ARCHS ?= 70 75 80 86 89 90
ifneq ($(NVCC),)
CUDA_NVCC_ARCHS := $(shell $(NVCC) --list-gpu-arch 2>/dev/null | sed -n 's/^compute_//p')
CUDA_BUILD_ARCHS := $(if $(CUDA_NVCC_ARCHS),$(filter $(CUDA_NVCC_ARCHS),$(CUDA_ARCHS)),$(CUDA_ARCHS))
CUDA_SKIP_ARCHS := $(filter-out $(CUDA_BUILD_ARCHS),$(CUDA_ARCHS))
CUDA_PTX := $(lastword $(CUDA_BUILD_ARCHS))
CUDA_COMMA := ,
CUDA_GENCODE := $(foreach a,$(CUDA_BUILD_ARCHS),-gencode arch=compute_$(a)$(CUDA_COMMA)code=sm_$(a)) \
                $(if $(CUDA_PTX),-gencode arch=compute_$(CUDA_PTX)$(CUDA_COMMA)code=compute_$(CUDA_PTX))
CUDA_ARCH_LIST := $(patsubst %,sm_%,$(CUDA_BUILD_ARCHS)) + compute_$(CUDA_PTX) PTX
CUDA_ARCH_MSG := $(CUDA_ARCH_LIST)$(if $(CUDA_SKIP_ARCHS),$(CUDA_COMMA) not $(patsubst %,sm_%,$(CUDA_SKIP_ARCHS)) (this nvcc cannot build it))
endif

ifeq ($(NO_CUDA),1)
HAVE_CUDA :=
CUDA_MSG := CUDA backend: off (NO_CUDA=1)
else ifeq ($(NVCC),)
HAVE_CUDA :=
CUDA_MSG := CUDA backend: not found (no nvcc on PATH or in $(CUDA_HOME)); CPU only
else ifeq ($(CUDA_LIBDIR),)
HAVE_CUDA :=
CUDA_MSG := CUDA backend: not found (nvcc at $(NVCC) but no libcublas.so under $(CUDA_TOP)); CPU only
else ifeq ($(CUDA_INCDIR),)
HAVE_CUDA :=
CUDA_MSG := CUDA backend: not found (nvcc at $(NVCC) but no cuda_runtime.h under $(CUDA_TOP)); CPU only
else
HAVE_CUDA := 1
CUDA_MSG := CUDA backend: found ($(NVCC), toolkit $(CUDA_TOP), $(CUDA_ARCH_MSG))
endif
# Open MPI (Debian libopenmpi-dev): through pkg-config (ompi-c), else mpicc --showme.  Built in
# when found: `mpirun -np K ./rlprice nightly ...` shards the night over K ranks (docs/mpi.md).
ifeq ($(NO_MPI),1)
HAVE_MPI :=
MPI_MSG := MPI: off (NO_MPI=1)
else
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS := $(shell pkg-config --libs ompi-c 2>/dev/null)
ifeq ($(MPI_LIBS),)
MPICC := $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LIBS := $(shell $(MPICC) --showme:link 2>/dev/null)
endif
endif
ifeq ($(MPI_LIBS),)
HAVE_MPI :=
MPI_MSG := MPI: not found (no pkg-config ompi-c, no mpicc); one process only
else
HAVE_MPI := 1
MPI_MSG := MPI: found (Open MPI $(shell pkg-config --modversion ompi-c 2>/dev/null || echo '?'), mpirun: $(or $(shell command -v mpirun 2>/dev/null),not on PATH))
endif
endif
$(info rlprice: OpenBLAS: found ($(shell pkg-config --modversion openblas)))
$(info rlprice: HDF5: found ($(shell pkg-config --modversion hdf5)))
$(info rlprice: libpq: found ($(shell pkg-config --modversion libpq)))
$(info rlprice: cmocka: found ($(shell pkg-config --modversion cmocka)))
$(info rlprice: json-c: found ($(shell pkg-config --modversion json-c)); zlib: found ($(shell pkg-config --modversion zlib)); libcsv: found)
$(info rlprice: $(CUDA_MSG))
$(info rlprice: $(MPI_MSG))

CFLAGS ?= -O2
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -g -fno-strict-aliasing $(PKG_CFLAGS) \
          $(addprefix -I,$(MODULES)) -I. -DRLPRICE_BUILD_DATA=\"$(BUILD)/datasets\"
LDLIBS := $(PKG_LIBS) -lcsv -lm -lpthread
ifeq ($(CI),true)
CFLAGS += -Werror
endif
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

NVCCFLAGS := -O2 -std=c++17 $(CUDA_GENCODE) -DENG_CUDA_ARCHS='"$(CUDA_ARCH_LIST)"' \
             -Xcompiler -fPIC,-Wall $(addprefix -I,$(MODULES))
ifeq ($(HAVE_CUDA),1)
CFLAGS += -DENG_HAVE_CUDA=1 -I$(CUDA_INCDIR)
LDLIBS += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublas -lcudart_static -ldl -lrt -lstdc++
CU_SRC := $(wildcard engine/*.cu)
endif

ifeq ($(HAVE_MPI),1)
CFLAGS += -DENG_HAVE_MPI=1 $(MPI_CFLAGS)
LDLIBS += $(MPI_LIBS)
PAR_OUT := engine/runtime/eng_par_none.c
else
PAR_OUT := engine/runtime/eng_par_mpi.c
endif

LIB_SRC  := $(filter-out $(PAR_OUT),$(wildcard $(addsuffix /*.c,$(MODULES))))
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC)) $(patsubst %.cu,$(BUILD)/%.cu.o,$(CU_SRC))
LIB_OBJ  += $(BUILD)/gen/db_sql_text.o
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
# tools beside the product (not installed): the backtest's truth dump for the ceiling analysis
TOOL_SRC := $(wildcard experiments/backtest/ceiling/*.c)
TOOL_BIN := $(patsubst experiments/backtest/ceiling/%.c,$(BUILD)/tools/%,$(TOOL_SRC))
DEPFILES := $(LIB_OBJ:.o=.d) $(BUILD)/rlprice.d $(TEST_BIN:=.d) $(TOOL_BIN:=.d)

RLPRICE := $(if $(filter build,$(BUILD)),rlprice,$(BUILD)/rlprice)

# The real data (data/datasets/**/*.xz, see its README) unpacked into $(BUILD)/datasets/.
DATA_XZ  := $(shell find data/datasets -name '*.xz' 2>/dev/null)
DATA_OUT := $(patsubst data/datasets/%.xz,$(BUILD)/datasets/%,$(DATA_XZ))

build: $(RLPRICE) $(TEST_BIN) $(TOOL_BIN) $(DATA_OUT)

$(BUILD)/datasets/%: data/datasets/%.xz
	@mkdir -p $(@D)
	xz -dc $< >$@.tmp && mv $@.tmp $@

$(BUILD)/librlprice.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	@rm -f $@ # a fresh archive: no member left from a source file that was removed or moved
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# data/schema.sql and data/roles.sql embedded as C strings (db_schema.h)
$(BUILD)/gen/db_sql_text.c: data/schema.sql data/roles.sql scripts/sql2c.sh
	@mkdir -p $(@D)
	{ scripts/sql2c.sh db_schema_sql data/schema.sql; scripts/sql2c.sh db_roles_sql data/roles.sql; } >$@.tmp && mv $@.tmp $@

$(BUILD)/gen/db_sql_text.o: $(BUILD)/gen/db_sql_text.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -MD -MF $(@:.o=.d) -c $< -o $@

$(RLPRICE): $(BUILD)/rlprice.o $(BUILD)/librlprice.a
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/librlprice.a tests/test_common.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests -MMD -MP $(LDFLAGS) $< $(BUILD)/librlprice.a -o $@ $(LDLIBS)

$(BUILD)/tools/%: experiments/backtest/ceiling/%.c $(BUILD)/librlprice.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP $(LDFLAGS) $< $(BUILD)/librlprice.a -o $@ $(LDLIBS)

# Rebuild everything when the flags change (e.g. NO_CUDA=1 after a CUDA build).
CONFIG_LINE := $(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS) $(NVCCFLAGS) cuda=$(HAVE_CUDA) mpi=$(HAVE_MPI)
$(BUILD)/.config: FORCE
	@mkdir -p $(@D)
	@echo '$(CONFIG_LINE)' | cmp -s - $@ || echo '$(CONFIG_LINE)' >$@
$(LIB_OBJ) $(BUILD)/rlprice.o $(TEST_BIN) $(TOOL_BIN): $(BUILD)/.config
.PHONY: FORCE
FORCE:

-include $(DEPFILES)
endif
