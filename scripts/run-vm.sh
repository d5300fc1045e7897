#!/usr/bin/env bash
# Boot the test kernel under QEMU TCG emulating an AMD CPU with SVM (these
# machines have no hardware virtualization) and keep the console log.
#   run-vm.sh LOG [KERNEL_ARG...]    (BZIMAGE, INITRAMFS, VM_TIMEOUT from env)
# Progress lines of the tests are echoed while the VM runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

log=$1
shift
append="$*"
bzimage=${BZIMAGE:-$OBJ/arch/x86/boot/bzImage}
initramfs=${INITRAMFS:-$BUILD/initramfs.cpio.gz}
limit=${VM_TIMEOUT:-2400}

[ -f "$bzimage" ] || die "no kernel at $bzimage"
[ -f "$initramfs" ] || die "no initramfs at $initramfs"

# -accel tcg,thread=single: multi-threaded TCG crashed the inner kernel.
# One socket and tsc=reliable: otherwise the inner kernel marks the TSC
# unstable and KVM's master clock (and so vmclock) is off.
say "booting the test kernel under QEMU TCG (EPYC + SVM), limit ${limit}s; console: $log"
set +e
timeout --foreground -k 10 "$limit" qemu-system-x86_64 \
	-accel tcg,thread=single -cpu EPYC,+vgif -smp 2,sockets=1 -m 4G \
	-nographic -no-reboot -nodefaults -serial stdio -display none \
	-kernel "$bzimage" -initrd "$initramfs" \
	-append "console=ttyS0 panic=-1 tsc=reliable $append" </dev/null 2>&1 |
	sed -u 's/\r//g' | tee "$log" | grep --line-buffered -E 'vmclock-test: (not )?ok|vmclock-test: # (booted|clocksource|.*: guest|.* ns)|^\[ *[0-9.]+\] +# [a-z_0-9]+: pass:|(WARNING|BUG|Oops|Kernel panic)' | sed -u 's/^/    /'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 124 ] && warn "QEMU did not finish within ${limit}s"
exit 0
