#!/usr/bin/env bash
# Pack the emulated test host's initramfs: busybox, /init, the selftests
# built into OUT, the C libraries they need, and /tests/list.
#   initramfs.sh [SELFTESTS_OUT [IMAGE]]
# OBJ_DIR: where the KVM modules come from (default build/obj);
# SELFTESTS_GROUP=NAME: only the selftests of that group (e.g. "series").
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=${1:-$SELFTESTS_OUT}
image=${2:-$BUILD/initramfs.cpio.gz}
root=${image%.cpio.gz}.d
busybox=/bin/busybox
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static: install busybox-static"

rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,proc,sys,dev,tmp,tests,lib64,lib/x86_64-linux-gnu}
cp "$busybox" "$root/bin/busybox"
for app in $("$busybox" --list); do
	[ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"
done
install -m 755 "$ROOT/scripts/initramfs-init" "$root/init"

# KVM's modules, in load order (see scripts/test-kernel.config for why
# KVM is not built in).
obj=${OBJ_DIR:-$OBJ}
mkdir -p "$root/lib/modules"
for m in virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
	if [ -f "$obj/$m" ]; then
		cp "$obj/$m" "$root/lib/modules/"
	else
		warn "no $m in $obj: the kernel must have KVM built in"
	fi
done

: >"$root/tests/list"
while read -r name timeout group _; do
	[ -x "$out/$name" ] || continue
	[ -z "${SELFTESTS_GROUP:-}" ] || [ "$group" = "$SELFTESTS_GROUP" ] || continue
	mkdir -p "$root/tests/$(dirname "$name")"
	cp "$out/$name" "$root/tests/$name"
	echo "$name $timeout $group" >>"$root/tests/list"
done < <(grep -v -e '^#' -e '^[[:space:]]*$' "$ROOT/scripts/selftests.list")
[ -s "$root/tests/list" ] || die "no selftests found in $out"
# The scripts of make demo / make bench, when they are being run.
for mode in demo bench ${INSIDE_MODE:-}; do
	if [ -x "$out/$mode" ]; then cp "$out/$mode" "$root/tests/$mode"; fi
done

# The selftests are dynamically linked: copy the loader and libraries,
# and libgcc_s explicitly (glibc loads it to unwind cancelled threads).
libs=$(find "$root/tests" -type f -perm -u+x -exec ldd {} \; 2>/dev/null |
	awk '/=>/ { print $3 } /ld-linux/ { print $1 }' | sort -u)
libgcc=$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/ && !found { print $NF; found = 1 }')
for lib in $libs $libgcc; do
	[ -f "$lib" ] || continue
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$image"
say "initramfs: $(wc -l <"$root/tests/list") selftests, $(du -h "$image" | cut -f1)"
