#!/usr/bin/env bash
# The KASAN + UBSAN variant of the test kernel (issue 11, step 7 of make
# test): the test kernel's configuration (scripts/test-kernel.config, lockdep
# and object debugging included) plus generic KASAN, UBSAN's shift and
# bounds checks, kmemleak (scanned once the tests are over, see
# initramfs-init), and SLUB instead of SLUB_TINY (which KASAN excludes),
# built into build/obj-kasan.  It boots with the series' own selftests only (group
# "series" of scripts/selftests.list, the fuzzer included); the KUnit suites
# run at boot and at KVM's load, as in the test kernel.
#   kasan.sh CONSOLE    build, boot, keep the console log in CONSOLE
# The selftests are those make test built (build/selftests): the UAPI is
# the same.  Exit status 1 if the kernel does not build.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

console=$1
KASAN_OBJ=$BUILD/obj-kasan
export EXTRA_CONFIG="CONFIG_SLUB_TINY=n CONFIG_KASAN=y CONFIG_KASAN_GENERIC=y
	CONFIG_KASAN_INLINE=y CONFIG_STACKTRACE=y CONFIG_UBSAN=y CONFIG_UBSAN_SHIFT=y
	CONFIG_UBSAN_BOUNDS=y CONFIG_UBSAN_TRAP=n CONFIG_DEBUG_KMEMLEAK=y
	CONFIG_DEBUG_KMEMLEAK_AUTO_SCAN=n"

say "KASAN + UBSAN kernel in $(basename "$KASAN_OBJ")"
start=$(date +%s)
"$ROOT/scripts/kernel.sh" "$TREE" "$KASAN_OBJ" >"$BUILD/kernel-kasan.log" 2>&1 || {
	grep -E 'error|Error|requested but not set' "$BUILD/kernel-kasan.log" | head -5 >&2 || true
	die "the KASAN kernel does not build (log: build/kernel-kasan.log)"
}
say "built in $(( $(date +%s) - start )) s"

OBJ_DIR=$KASAN_OBJ SELFTESTS_GROUP=series "$ROOT/scripts/initramfs.sh" \
	"$SELFTESTS_OUT" "$BUILD/initramfs-kasan.cpio.gz"
start=$(date +%s)
BZIMAGE=$KASAN_OBJ/arch/x86/boot/bzImage INITRAMFS=$BUILD/initramfs-kasan.cpio.gz \
	"$ROOT/scripts/run-vm.sh" "$console"
say "the KASAN kernel's run took $(( $(date +%s) - start )) s"
