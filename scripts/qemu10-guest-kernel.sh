#!/usr/bin/env bash
# Build the GUEST kernel that runs inside QEMU 10 inside the emulated test
# host (issue 10): stock Linux 7.2.13 (tag "base" of build/linux, no series:
# the guest side is the unmodified ptp_vmclock driver), in its own worktree
# and object directory, with a small config and none of the test kernel's
# lock debugging (the debug test kernel as a QEMU 10 guest printed a lockdep
# report in the scheduler at boot and hung).
#   qemu10-guest-kernel.sh        prints the bzImage's path on stdout
# Layout: build/qemu10/guest-src (git worktree of build/linux at "base"),
#         build/qemu10/guest-obj (O=), ccache in build/ccache.
# CPU-heavy work runs under "nice -n 19" (the machine is shared).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

Q=$BUILD/qemu10
src=$Q/guest-src
obj=$Q/guest-obj

# The config: tinyconfig plus this list. Every entry must end up set as
# written, or the build stops (as scripts/kernel.sh does for the host).
fragment() {
	cat <<-'EOF'
	# boot to a busybox initramfs on a serial console
	CONFIG_64BIT=y
	CONFIG_SMP=y
	CONFIG_PRINTK=y
	CONFIG_PRINTK_TIME=y
	CONFIG_TTY=y
	CONFIG_SERIAL_8250=y
	CONFIG_SERIAL_8250_CONSOLE=y
	CONFIG_BLK_DEV_INITRD=y
	CONFIG_RD_GZIP=y
	CONFIG_BINFMT_ELF=y
	CONFIG_BINFMT_SCRIPT=y
	CONFIG_DEVTMPFS=y
	CONFIG_DEVTMPFS_MOUNT=y
	CONFIG_PROC_FS=y
	CONFIG_SYSFS=y
	CONFIG_TMPFS=y
	CONFIG_SHMEM=y
	CONFIG_MULTIUSER=y
	CONFIG_FUTEX=y
	CONFIG_EPOLL=y
	CONFIG_POSIX_TIMERS=y
	CONFIG_HIGH_RES_TIMERS=y
	CONFIG_PROC_SYSCTL=y
	# the platform QEMU 10 gives (-M pc): ACPI describes the vmclock device
	CONFIG_PCI=y
	CONFIG_ACPI=y
	CONFIG_HPET_TIMER=y
	CONFIG_X86_TSC=y
	CONFIG_X86_X2APIC=y
	# a KVM guest: kvmclock (to compare with) and PTP_SYS_OFFSET_PRECISE
	CONFIG_HYPERVISOR_GUEST=y
	CONFIG_PARAVIRT=y
	CONFIG_KVM_GUEST=y
	# the vmclock driver: PTP needs NET and POSIX_TIMERS
	CONFIG_NET=y
	CONFIG_UNIX=y
	CONFIG_INET=y
	CONFIG_PTP_1588_CLOCK=y
	CONFIG_PTP_1588_CLOCK_VMCLOCK=y
	# no lock debugging in the guest
	CONFIG_PROVE_LOCKING=n
	CONFIG_DEBUG_ATOMIC_SLEEP=n
	CONFIG_DEBUG_LOCK_ALLOC=n
	EOF
}

export CCACHE_DIR=${CCACHE_DIR:-$BUILD/ccache}
export CCACHE_BASEDIR=$BUILD
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export KBUILD_BUILD_TIMESTAMP="2026-01-01"
export KBUILD_BUILD_USER=kvm-vmclock KBUILD_BUILD_HOST=localhost
kmake() { nice -n 19 make -s -C "$src" O="$obj" CC="ccache gcc" HOSTCC="ccache gcc" -j"$JOBS" "$@"; }

# A pristine worktree at "base"; build/linux itself is not touched otherwise.
git -C "$TREE" rev-parse -q --verify "$BASE_TAG^{commit}" >/dev/null ||
	die "$TREE has no tag $BASE_TAG (make tree creates it)"
if [ ! -e "$src/.git" ]; then
	say "creating the guest source worktree $src at tag $BASE_TAG"
	mkdir -p "$Q"
	git -C "$TREE" worktree add --quiet --detach "$src" "$BASE_TAG"
fi
[ "$(git -C "$src" rev-parse HEAD)" = "$(git -C "$TREE" rev-parse "$BASE_TAG^{commit}")" ] ||
	die "$src is not at $BASE_TAG: remove it (git -C $TREE worktree remove --force $src)"

config_has() {
	case $1 in
	*=n) ! grep -q "^${1%=n}=" "$obj/.config" ;;
	*) grep -qx "$1" "$obj/.config" ;;
	esac
}

want=$(fragment | grep '^CONFIG_')
sum=$(echo "$want" | sha1sum | cut -c1-40)
if [ ! -f "$obj/.config" ] || [ "$(cat "$obj/.fragment.sum" 2>/dev/null)" != "$sum" ]; then
	say "configuring the guest kernel: tinyconfig + the guest fragment"
	mkdir -p "$obj"
	kmake tinyconfig >/dev/null
	echo "$want" >"$obj/.fragment"
	"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$obj/.fragment" \
		>"$obj/.merge.log" 2>&1
	kmake olddefconfig >/dev/null
	bad=0
	while read -r line; do
		config_has "$line" || { warn "guest config: $line requested but not set"; bad=1; }
	done <<<"$want"
	[ "$bad" = 0 ] || { rm -f "$obj/.config"; die "the guest kernel config is not what it asks for"; }
	echo "$sum" >"$obj/.fragment.sum"
fi

say "building the guest bzImage in $obj with $JOBS jobs under nice -n 19"
start=$(date +%s)
kmake bzImage
say "guest kernel built in $(( $(date +%s) - start )) s: $(du -h "$obj/arch/x86/boot/bzImage" | cut -f1)"
echo "$obj/arch/x86/boot/bzImage"
