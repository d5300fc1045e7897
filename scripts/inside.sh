#!/usr/bin/env bash
# Boot the patched kernel under QEMU and run one script inside the emulated
# host instead of the tests: what "make demo" and "make bench" do.
#   inside.sh MODE SCRIPT TIMEOUT_SECONDS [KERNEL_ARGS...]
# SCRIPT runs as /tests/MODE; its output is shown without kernel messages,
# and kept with them in build/MODE-console.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=$1 script=$2 timeout=$3
shift 3

"$ROOT/scripts/deps.sh"
"$ROOT/scripts/fetch-base.sh"
"$ROOT/scripts/tree.sh"
say "building the test kernel and the selftests (minutes when cold)"
"$ROOT/scripts/kernel.sh"
"$ROOT/scripts/selftests.sh" >"$BUILD/selftests.log" 2>&1 ||
	{ tail -20 "$BUILD/selftests.log"; die "selftests do not build"; }
cp "$script" "$SELFTESTS_OUT/$mode"
chmod +x "$SELFTESTS_OUT/$mode"
INSIDE_MODE=$mode "$ROOT/scripts/initramfs.sh" "$SELFTESTS_OUT" "$BUILD/$mode.cpio.gz"
say "booting; the output of $mode follows"
BZIMAGE=$OBJ/arch/x86/boot/bzImage INITRAMFS=$BUILD/$mode.cpio.gz VM_TIMEOUT=$timeout \
	"$ROOT/scripts/run-vm.sh" "$BUILD/$mode-console.log" "vmclock.mode=$mode" "$@" >/dev/null
# The script's own output, without the kernel's messages.
sed -n "/=== inside the emulated host/,/vmclock-test: # $mode done/p" "$BUILD/$mode-console.log" |
	grep -v -E '^\[ *[0-9]+\.[0-9]+\]' | grep -v "$mode done"
grep -q 'vmclock-test: completed' "$BUILD/$mode-console.log" ||
	die "$mode did not complete (see build/$mode-console.log)"
