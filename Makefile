# amlfs: build, test, install. `make help` lists the targets.
#
# Dependencies are found through pkg-config, or through these variables for a build
# without root on a cluster (each names an install prefix with include/ and lib/):
#   HDF5_DIR, DNNL_DIR, CUDA_HOME (default /usr/local/cuda).
# The flags are resolved when make reads this file, so the targets that install the
# packages first (demo, test, bench-train) run `deps` and then a second make that
# reads it again (`make setup`; tests/tools/test_make_setup.sh proves it).

VERSION := 0.1.0
PREFIX  ?= /usr/local
CC      ?= cc
CUDA_HOME ?= /usr/local/cuda
NVCC    ?= $(CUDA_HOME)/bin/nvcc

# ---- dependencies -----------------------------------------------------------------
ifdef HDF5_DIR
HDF5_CFLAGS := -I$(HDF5_DIR)/include
HDF5_LIBS   := -L$(HDF5_DIR)/lib -Wl,-rpath,$(HDF5_DIR)/lib -lhdf5_hl -lhdf5
else
HDF5_CFLAGS := $(shell pkg-config --cflags hdf5 2>/dev/null)
HDF5_LIBDIR := $(patsubst -L%,%,$(filter -L%,$(shell pkg-config --libs hdf5 2>/dev/null)))
HDF5_LIBS   := $(if $(HDF5_LIBDIR),-L$(HDF5_LIBDIR)) -lhdf5_hl -lhdf5
endif
ifdef DNNL_DIR
DNNL_CFLAGS := -I$(DNNL_DIR)/include
DNNL_LIBS   := -L$(DNNL_DIR)/lib -Wl,-rpath,$(DNNL_DIR)/lib -ldnnl
else
DNNL_CFLAGS :=
DNNL_LIBS   := -ldnnl
endif

# ---- flags ------------------------------------------------------------------------
# snprintf into fixed buffers truncates on purpose (paths and messages), hence the -Wno
WARN     := -Wall -Wextra -Werror -Wno-format-truncation
CPPFLAGS := -D_GNU_SOURCE -DAMLFS_VERSION='"$(VERSION)"' -Ikernels -Itools/lib \
            $(HDF5_CFLAGS) $(DNNL_CFLAGS)
OPT      ?= -O2 -march=x86-64-v2
CFLAGS   := -std=c11 $(OPT) -g $(WARN) -fopenmp
# OpenBLAS (identification's sgemm) only in the programs that call it: its constructor
# starts a thread pool in every program that loads it
LDLIBS   := $(HDF5_LIBS) $(DNNL_LIBS) -Wl,--as-needed -lopenblas -Wl,--no-as-needed -lz -fopenmp -lm

# The sanitizer build lives in its own tree and never mixes objects with the plain one.
ifeq ($(SAN),1)
B        := build/san
CFLAGS   := -std=c11 -O1 -g -fno-omit-frame-pointer $(WARN) -fopenmp \
            -fsanitize=address,undefined -fno-sanitize-recover=all
LDLIBS   += -fsanitize=address,undefined
else
B        := build/rel
endif
BIN := $(B)/bin

# images: libjpeg(-turbo) and libpng (tools/lib/image.c)
IMG_LIBS := -ljpeg $(or $(shell pkg-config --libs libpng 2>/dev/null),-lpng16)
CPPFLAGS += $(shell pkg-config --cflags libpng 2>/dev/null)
LDLIBS   += $(IMG_LIBS)

# ---- sources ----------------------------------------------------------------------
KERNEL_SRC := $(wildcard kernels/cpu/*.c)
LIB_SRC    := $(wildcard tools/lib/*.c)
TOOL_SRC   := $(wildcard tools/amlfs-*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
BENCH_SRC  := $(wildcard bench/*.c)
CUDA_SRC   := $(wildcard kernels/cuda/*.cu)
CUDA_MAIN  := $(wildcard tests/cuda/*.cu)

KERNEL_OBJ := $(KERNEL_SRC:%.c=$(B)/%.o)
LIB_OBJ    := $(LIB_SRC:%.c=$(B)/%.o) $(B)/gen/schemas.o
SCHEMAS    := $(sort $(wildcard schemas/*.schema)) $(sort $(wildcard schemas/old/*.schema))
TOOLS      := $(TOOL_SRC:tools/%.c=$(BIN)/%)
UNITS      := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCHES    := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
KERNEL_LIB := $(B)/libamlfs_kernels.a
TOOL_LIB   := $(B)/libamlfs_tools.a

.PHONY: bench-train bench-train-run workflow-links all help deps bench-deps setup test test-fast sanitize cuda demo \
        demo-run demo-face demo-face-run demo-reid demo-reid-run install uninstall \
        install-cuda install-files \
        bench clean check-deps
.DEFAULT_GOAL := all
.SECONDARY:

WORKFLOW := workflow/amlfs-run workflow/amlfs-step workflow/amlfs-convert-torchvision slurm/amlfs-submit

all: check-deps $(TOOLS) $(UNITS) $(BENCHES) workflow-links

# the driver and the step script beside the tools in bin/ (links to the sources)
workflow-links:
	@mkdir -p bin $(BIN) && for w in $(WORKFLOW); do \
	  ln -sf ../$$w bin/$$(basename $$w); ln -sf $(CURDIR)/$$w $(BIN)/$$(basename $$w); done

help:
	@echo "make            build the tools into $(BIN)/ (and bin/ links to them)"
	@echo "make deps       apt-get the Debian packages amlfs needs (once; idempotent)"
	@echo "make setup      deps, then a second make that finds what they installed"
	@echo "make bench-deps add python3-torch (fixtures, benchmarks)"
	@echo "make test       plain and sanitizer builds, unit and tool tests, CUDA build"
	@echo "make sanitize   ASan+UBSan build and its test run"
	@echo "make cuda       compile and link the CUDA sources with nvcc"
	@echo "make demo       a short real search on Fashion-MNIST and its report"
	@echo "make demo-face  a face search on a generated folder beside the exact CosFace loss"
	@echo "make demo-reid  a re-ID search on a generated folder beside the fixed loss and random"
	@echo "make bench      loss, layer and overhead benchmarks, JSON into bench/results/"
	@echo "make bench-train  training speed, accuracy and first epoch next to PyTorch"
	@echo "make install PREFIX=DIR   tools into DIR/bin; schemas, report and export templates into DIR/share/amlfs"
	@echo "make install-cuda PREFIX=DIR   the same with the CUDA build's tools"

# ---- Debian packages --------------------------------------------------------------
DEB_PKGS := build-essential pkg-config libhdf5-dev hdf5-tools libdnnl-dev \
            librandom123-dev zlib1g-dev parallel gnuplot-nox slurm-wlm munge dataset-fashion-mnist \
            python3 python3-h5py python3-numpy valgrind libopenblas-dev
BENCH_PKGS := python3-torch python3-torchvision

DEB_PKGS += libjpeg62-turbo-dev libpng-dev
# the image tests decode with PIL, independently of the tools' libjpeg and libpng
DEB_PKGS += python3-pil

# Installs only what is missing, so a second run does no apt-get at all.
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "deps: all Debian packages present"; fi

bench-deps: deps
	@missing=$$(for p in $(BENCH_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "bench-deps: installing:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "bench-deps: all Debian packages present"; fi

# setup: the packages, then a second make that reads this file again and so resolves the
# flags of what `deps` just installed (a make that ran `deps` resolved them before).
setup: deps
	@$(MAKE) --no-print-directory check-deps

# Says what was found; fails loudly when a required one is missing.
check-deps:
	@test -f "$$(echo '#include <hdf5.h>' | $(CC) $(CPPFLAGS) -E -M - 2>/dev/null | grep -o '[^ ]*hdf5.h' | head -1)" \
	  || { echo "amlfs: HDF5 not found (make deps, or HDF5_DIR=...)"; exit 1; }
	@echo '#include <Random123/philox.h>' | $(CC) $(CPPFLAGS) -fsyntax-only -x c - 2>/dev/null \
	  || { echo "amlfs: Random123 not found (make deps: librandom123-dev)"; exit 1; }
	@echo '#include <dnnl.h>' | $(CC) $(CPPFLAGS) -fsyntax-only -x c - 2>/dev/null \
	  || { echo "amlfs: oneDNN not found (make deps: libdnnl-dev, or DNNL_DIR=...)"; exit 1; }
	@echo '#include <cblas.h>' | $(CC) $(CPPFLAGS) -fsyntax-only -x c - 2>/dev/null \
	  || { echo "amlfs: OpenBLAS not found (make deps: libopenblas-dev)"; exit 1; }

# ---- compile ----------------------------------------------------------------------
$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/gen/schemas.c: $(SCHEMAS) tools/lib/embed-schemas.sh
	@mkdir -p $(dir $@)
	tools/lib/embed-schemas.sh $@ $(SCHEMAS)

$(B)/gen/schemas.o: $(B)/gen/schemas.c
	$(CC) $(CFLAGS) -c $< -o $@

$(KERNEL_LIB): $(KERNEL_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(TOOL_LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/amlfs-%: $(B)/tools/amlfs-%.o $(TOOL_LIB) $(KERNEL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(TOOL_LIB) $(KERNEL_LIB) $(LDLIBS) -o $@
	@if [ "$(SAN)" != 1 ]; then mkdir -p bin && ln -sf ../$@ bin/$(notdir $@); fi

$(B)/tests/%: $(B)/tests/unit/%.o $(TOOL_LIB) $(KERNEL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(TOOL_LIB) $(KERNEL_LIB) $(LDLIBS) -o $@

$(B)/bench/%: $(B)/bench/%.o $(TOOL_LIB) $(KERNEL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(TOOL_LIB) $(KERNEL_LIB) $(LDLIBS) -o $@

# ---- float64 layer reference and its finite-difference test -----------------------
# layers_ref.c compiled a second time with amlfs_real = double; test_layers_fd links
# that object alone, never the kernel library (whose ref_* functions are float). These
# explicit rules take precedence over the pattern rules above for the same targets.
$(B)/kernels/cpu/layers_ref_f64.o: kernels/cpu/layers_ref.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DAMLFS_REAL_DOUBLE $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/tests/unit/test_layers_fd.o: tests/unit/test_layers_fd.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DAMLFS_REAL_DOUBLE $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/tests/test_layers_fd: $(B)/tests/unit/test_layers_fd.o $(B)/kernels/cpu/layers_ref_f64.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@
# ---- end of the float64 block -------------------------------------------------------

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- tests ------------------------------------------------------------------------
# test-fast: this build's unit and tool tests. make test: the plain build with every
# test, then the sanitizer build with the unit and tool tests, then the CUDA build.
test-fast: all
	@tests/run.sh $(B)

test: setup
	@mkdir -p build && date +%s > build/.test-start
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory sanitize
	@if [ -x "$(NVCC)" ]; then $(MAKE) --no-print-directory cuda; \
	 else echo "cuda: $(NVCC) not found; CUDA build not checked"; fi
	@tests/run.sh build/rel --slow
	@echo "make test: $$(( $$(date +%s) - $$(cat build/.test-start) )) s in all"

sanitize:
	$(MAKE) --no-print-directory SAN=1 all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  tests/run.sh build/san

# ---- CUDA -------------------------------------------------------------------------
# cuDNN 9 deprecates its legacy convolution and batch-norm calls: files that use them
# are compiled with -Wno-deprecated-declarations (DESIGN.md 4).
#
# build/cuda holds the CUDA checks, bench-train (bench/train.c with the CUDA backend
# linked in) and lib/: the shared libraries those programs load from outside the CUDA
# toolkit and the C/C++ runtime (oneDNN, which the CPU backend in the kernel library
# pulls in, and what it needs), copied there and found through RPATH $ORIGIN/lib, so
# that the directory runs on a GPU machine without libdnnl-dev and friends. CUDA,
# cuDNN and cuBLAS are left to that machine (tests/cuda/device-check.sh finds them).
CUDA_B     := build/cuda
CUDA_OBJ   := $(CUDA_SRC:kernels/cuda/%.cu=$(CUDA_B)/%.o)
CUDA_BINS  := $(CUDA_MAIN:tests/cuda/%.cu=$(CUDA_B)/%) $(CUDA_B)/bench-train
# the tools with the CUDA backend linked in (--device cuda:N), lib/ beside bin/
CUDA_TOOLS := $(TOOL_SRC:tools/%.c=$(CUDA_B)/bin/%)
NVCCFLAGS  := -O2 -std=c++17 -Ikernels -Xcompiler -Wall,-Wextra,-Werror \
              -arch=sm_90 -DAMLFS_VERSION='"$(VERSION)"'
CUDA_LIBS  := -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib -Xlinker -rpath,$(CUDA_HOME)/lib64 \
              -Xlinker -rpath,$(CUDA_HOME)/lib -lcudnn -lcublas -lcudart
# The bundle's folder relative to a program: DT_RPATH, not RUNPATH, so that it also
# serves the libraries' own dependencies (libdnnl's)
cuda_rpath = -Xlinker --disable-new-dtags -Xlinker -rpath,'$$ORIGIN/$(1)'
# the host libraries, with -Wl, spelled for nvcc
comma      := ,
CUDA_HOST_LIBS := $(patsubst -Wl$(comma)%,-Xlinker %,$(HDF5_LIBS) $(DNNL_LIBS)) \
              -Xlinker --as-needed,-lopenblas,--no-as-needed -lz -lm -Xcompiler -fopenmp
# what lib/ leaves to the machine: the CUDA libraries and the C/C++ runtime
CUDA_NOT_BUNDLED := linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libstdc\+\+|libgcc_s|libcudart|libcudnn|libcublas
CUDA_HOST_LIBS += $(IMG_LIBS)

cuda:
	@test -x "$(NVCC)" || { echo "cuda: nvcc not found at $(NVCC) (set CUDA_HOME)"; exit 1; }
	@test -f "$(CUDA_HOME)/include/cudnn.h" || { echo "cuda: cuDNN not found in $(CUDA_HOME)/include"; exit 1; }
	@echo "cuda: nvcc $$($(NVCC) --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), cuDNN, cuBLAS found"
	$(MAKE) --no-print-directory $(KERNEL_LIB) $(TOOL_LIB) $(CUDA_BINS) $(CUDA_TOOLS) \
	  $(CUDA_B)/lib/.bundled
	@echo "cuda: $(CUDA_B) is $$(du -sh --apparent-size $(CUDA_B) | cut -f1) ($$(du -sh --apparent-size $(CUDA_B)/lib | cut -f1) in lib/:" \
	  "$$(cd $(CUDA_B)/lib && ls | tr '\n' ' '))"

$(CUDA_B)/%.o: kernels/cuda/%.cu $(wildcard kernels/*.h) \
               $(wildcard kernels/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CUDA_B)/%: tests/cuda/%.cu $(CUDA_OBJ) $(KERNEL_LIB)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $< $(CUDA_OBJ) $(KERNEL_LIB) -o $@ $(CUDA_LIBS) \
	  $(call cuda_rpath,lib) $(CUDA_HOST_LIBS)

# bench/train.c's object from the C build, with every CUDA object: --device cuda works
$(CUDA_B)/bench-train: $(B)/bench/train.o $(CUDA_OBJ) $(TOOL_LIB) $(KERNEL_LIB)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $< $(CUDA_OBJ) $(TOOL_LIB) $(KERNEL_LIB) -o $@ $(CUDA_LIBS) \
	  $(call cuda_rpath,lib) $(CUDA_HOST_LIBS)

$(CUDA_B)/bin/amlfs-%: $(B)/tools/amlfs-%.o $(CUDA_OBJ) $(TOOL_LIB) $(KERNEL_LIB)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $< $(CUDA_OBJ) $(TOOL_LIB) $(KERNEL_LIB) -o $@ $(CUDA_LIBS) \
	  $(call cuda_rpath,../lib) $(CUDA_HOST_LIBS)

# The libraries the programs resolve outside CUDA and the C/C++ runtime, copied (links
# followed) under their sonames; made again whenever a program is.
$(CUDA_B)/lib/.bundled: $(CUDA_BINS) $(CUDA_TOOLS)
	@rm -rf $(CUDA_B)/lib && mkdir -p $(CUDA_B)/lib
	@ldd $(CUDA_BINS) $(CUDA_TOOLS) | awk '$$2 == "=>" && $$3 ~ /^\// { print $$1, $$3 }' | sort -u | \
	  grep -Ev '^($(CUDA_NOT_BUNDLED))' | while read -r soname path; do \
	    cp -L "$$path" "$(CUDA_B)/lib/$$soname" || exit 1; done
	@touch $@

# ---- bench, demo, install ---------------------------------------------------------
# bench: the loss and layer programs and the search's overhead; bench-train: training
# speed and accuracy next to PyTorch, and the first epoch next to PyTorch's default start
# (python3-torch from bench-deps)
bench: all
	@for b in $(filter-out %/train,$(BENCHES)); do echo "== $$b"; $$b || exit 1; done
	@echo "== bench/overhead"; bench/overhead

bench-train: bench-deps
	@$(MAKE) --no-print-directory bench-train-run

bench-train-run: all
	@bench/train
	@bench/first-epoch

demo: setup
	@$(MAKE) --no-print-directory demo-run

demo-run: all
	@workflow/demo.sh

# the face search of configs/face-small.conf on a generated folder, and its CosFace baseline
demo-face: setup
	@$(MAKE) --no-print-directory demo-face-run

demo-face-run: all
	@workflow/demo-face.sh

# the re-ID search of configs/reid-small.conf on a generated folder, its fixed loss and ablation
demo-reid: setup
	@$(MAKE) --no-print-directory demo-reid-run

demo-reid-run: all
	@workflow/demo-reid.sh

# install-cuda: the same with the tools of the CUDA build (--device cuda:N), which run on
# the CPU too; they find cuDNN and cuBLAS in CUDA_HOME, HDF5 and oneDNN where the system
# keeps them (build/cuda/lib, the bundle for machines without them, is not installed)
install: all
	$(MAKE) --no-print-directory install-files INSTALL_TOOLS="$(TOOLS)"

install-cuda: all cuda
	$(MAKE) --no-print-directory install-files INSTALL_TOOLS="$(CUDA_TOOLS)"

install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/amlfs/schemas
	install -m 755 $(INSTALL_TOOLS) $(WORKFLOW) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 schemas/*.schema $(DESTDIR)$(PREFIX)/share/amlfs/schemas/
	install -d $(DESTDIR)$(PREFIX)/share/amlfs/schemas/old
	install -m 644 schemas/old/*.schema $(DESTDIR)$(PREFIX)/share/amlfs/schemas/old/
	install -d $(DESTDIR)$(PREFIX)/share/amlfs/slurm
	install -m 644 slurm/*.sbatch $(DESTDIR)$(PREFIX)/share/amlfs/slurm/
	install -d $(DESTDIR)$(PREFIX)/share/amlfs/report
	install -m 644 share/report/* $(DESTDIR)$(PREFIX)/share/amlfs/report/
	install -d $(DESTDIR)$(PREFIX)/share/amlfs/export
	install -m 644 share/export/* $(DESTDIR)$(PREFIX)/share/amlfs/export/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(notdir $(TOOLS) $(WORKFLOW)))
	rm -rf $(DESTDIR)$(PREFIX)/share/amlfs

clean:
	rm -rf build bin
