#!/usr/bin/env bash
# "make demo": boot the patched kernel under QEMU and show a VM running
# inside it, whose guest reads a vmclock.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$ROOT/scripts/deps.sh"
"$ROOT/scripts/fetch-base.sh"
"$ROOT/scripts/tree.sh"
say "building the test kernel and the selftests (minutes when cold)"
"$ROOT/scripts/kernel.sh"
"$ROOT/scripts/selftests.sh" >"$BUILD/selftests.log" 2>&1 ||
	{ tail -20 "$BUILD/selftests.log"; die "selftests do not build"; }
cp "$ROOT/scripts/demo-inside" "$SELFTESTS_OUT/demo"
chmod +x "$SELFTESTS_OUT/demo"
"$ROOT/scripts/initramfs.sh" "$SELFTESTS_OUT" "$BUILD/demo.cpio.gz"
say "booting; the demo's output follows"
BZIMAGE=$OBJ/arch/x86/boot/bzImage INITRAMFS=$BUILD/demo.cpio.gz VM_TIMEOUT=900 \
	"$ROOT/scripts/run-vm.sh" "$BUILD/demo-console.log" vmclock.mode=demo >/dev/null
# Show the demo's own output, without the kernel's messages.
sed -n '/=== inside the emulated host/,/vmclock-test: # demo done/p' "$BUILD/demo-console.log" |
	grep -v -E '^\[ *[0-9]+\.[0-9]+\]' | grep -v 'demo done'
grep -q 'vmclock-test: completed' "$BUILD/demo-console.log" || die "the demo did not complete (see build/demo-console.log)"
