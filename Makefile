# kvm-vmclock: a KVM x86 patch series keeping a guest vmclock up to date.
# See README.md. Everything is built under build/ (never committed).

SHELL := /bin/bash
SHARED_DEB := $(abspath ../shared/base/linux-source-7.2_7.2.13-1_all.deb)
# The base: a linux-source-7.2 .deb or .tar.xz; Debian unstable when unset.
LINUX_SOURCE ?= $(if $(wildcard $(SHARED_DEB)),$(SHARED_DEB))
export LINUX_SOURCE

.PHONY: all deps base tree export kernel selftests test demo bench e2e check-series clean help

all: help

help:
	@echo "make test       everything a reviewer wants proven (ends with 'N passed, N failed')"
	@echo "make demo       QEMU 10 + a stock guest (ptp_vmclock) on the patched KVM: steady, +200 ppm, migration, TSC loss"
	@echo "make bench      auto-mode benchmark in the emulated host (BENCH_SECONDS=600)"
	@echo "make e2e        QEMU 10 + stock guest (ptp_vmclock) on the patched KVM: boot, migration, TSC loss, host slew"
	@echo "make tree       build/linux: the base, tagged 'base', with patches/ applied (git am)"
	@echo "make export     build/linux commits -> patches/, series and the new-file tree"
	@echo "make kernel     the test kernel (tinyconfig + scripts/test-kernel.config), ccache"
	@echo "make selftests  the KVM selftests of scripts/selftests.list"
	@echo "make clean      remove build/ (the kernel tree, objects, ccache)"

deps:
	@scripts/deps.sh

base: deps
	@scripts/fetch-base.sh

tree: base
	@scripts/tree.sh

export:
	@scripts/export.sh

kernel: tree
	@scripts/kernel.sh

selftests: kernel
	@scripts/selftests.sh

check-series: tree
	@scripts/check-series.sh

test:
	@scripts/test.sh

demo:
	@scripts/demo.sh

bench:
	@scripts/bench.sh

# Step 7 of make test, on its own: scripts/e2e.sh.
e2e: kernel
	@scripts/e2e.sh

clean:
	@if [ -d build/linux ] && git -C build/linux rev-parse -q --verify base >/dev/null && \
	    [ -n "$$(git -C build/linux log --format=%h base..HEAD)" ] && [ "$(FORCE)" != 1 ]; then \
		scripts/check-exported.sh || { echo "make clean: export first, or FORCE=1"; exit 1; }; \
	fi
	rm -rf build
