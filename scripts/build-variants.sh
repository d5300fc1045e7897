#!/usr/bin/env bash
# Build coverage beyond the test kernel, one result line each on stdout
# ("ok NAME" / "not ok NAME # why"):
#  - the new code with W=1 (extra warnings), in the test kernel's objects;
#  - the KVM directories with CONFIG_KVM_VMCLOCK=n (the stubs);
#  - the KVM directories with KVM built in rather than as modules;
#  - the guest-entry branch of automatic mode a NOP in kvm.ko, and the
#    clock line's per-tick branch a NOP in vmlinux.o.
#  - sparse (C=2) on the objects the series changes in the kernel proper,
#    with a sparse new enough for 7.2 (scripts/sparse.sh).
#   build-variants.sh [TREE]   default: build/linux
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$(realpath "${1:-$TREE}")
export CCACHE_DIR=${CCACHE_DIR:-$BUILD/ccache}
export CCACHE_BASEDIR=$BUILD

# Warnings (W=1) in the files the series adds, built in the test kernel's
# objects: only their own lines count, not those of included headers.
w1_check() {
	local log=$BUILD/variant-w1.log objs=()
	local f
	for f in arch/x86/kvm/vmclock.c kernel/time/clock_line.c; do
		[ -f "$src/$f" ] && objs+=("${f%.c}.o")
	done
	if make -s -C "$src" O="$OBJ" CC="ccache gcc" W=1 "${objs[@]}" >"$log" 2>&1 &&
	   ! grep -E '((vmclock|clock_line)[a-z_]*\.[ch]):[0-9]+:[0-9]+: warning' "$log" >/dev/null; then
		echo "ok build-w1-vmclock"
	else
		echo "not ok build-w1-vmclock # W=1 warnings or errors (log: $log)"
		grep -E 'warning|error' "$log" | head -5 >&2 || true
	fi
}

# sparse on vmclock.c and clock_line.c (with the KUnit tests they include),
# x86.c, ntp.c and timekeeping.c: no warning at all, in the test kernel's objects.
SPARSE_OBJS=(arch/x86/kvm/vmclock.o arch/x86/kvm/x86.o kernel/time/ntp.o
	kernel/time/clock_line.o kernel/time/timekeeping.o)
sparse_check() {
	local log=$BUILD/variant-sparse.log sparse o
	if ! sparse=$("$ROOT/scripts/sparse.sh" "$src" 2>"$BUILD/sparse-build.log"); then
		echo "not ok build-sparse # no usable sparse (log: $BUILD/sparse-build.log)"
		tail -3 "$BUILD/sparse-build.log" >&2
		return 0
	fi
	make -C "$src" O="$OBJ" CC="ccache gcc" C=2 CHECK="$sparse" "${SPARSE_OBJS[@]}" >"$log" 2>&1 ||
		{ echo "not ok build-sparse # the build failed (log: $log)"; return 0; }
	for o in "${SPARSE_OBJS[@]}"; do
		grep -q "CHECK .*/${o%.o}.c\$" "$log" ||
			{ echo "not ok build-sparse # sparse did not check ${o%.o}.c (log: $log)"; return 0; }
	done
	if grep -E '\.[ch]:[0-9]+:[0-9]+: (warning|error):' "$log" >&2; then
		echo "not ok build-sparse # sparse warnings (log: $log)"
	else
		echo "ok build-sparse # C=2 on ${SPARSE_OBJS[*]}: no warnings"
	fi
}

# A compiler diagnostic on a source line; kconfig's notices about the
# variant's own overrides (".config:N:warning: override: ...") are not one.
compiler_warning='\.[chS]:[0-9]+:([0-9]+:)? (warning|error):'

# The KVM directories in a variant configuration (EXTRA_CONFIG).
variant() {
	local name=$1 extra=$2 obj=$BUILD/obj-$1 log=$BUILD/variant-$1.log
	say "build variant $name ($extra): arch/x86/kvm/ and virt/kvm/"
	if EXTRA_CONFIG="$extra" "$ROOT/scripts/kernel.sh" "$src" "$obj" arch/x86/kvm/ virt/kvm/ \
			>"$log" 2>&1 && ! grep -qE "$compiler_warning" "$log"; then
		echo "ok build-$name"
	else
		echo "not ok build-$name # does not build cleanly (log: $log)"
		grep -E "$compiler_warning|Error" "$log" | head -5 >&2 || true
	fi
}

w1_check
sparse_check
"$ROOT/scripts/static-key-nop.sh"
"$ROOT/scripts/static-key-nop.sh" "$OBJ/vmlinux.o" clock_line_key static-key-nop-clock-line
variant vmclock-off "CONFIG_KVM_VMCLOCK=n CONFIG_KVM_VMCLOCK_KUNIT_TEST=n"
variant kvm-builtin "CONFIG_KVM=y CONFIG_KVM_AMD=y CONFIG_KVM_INTEL=y"
