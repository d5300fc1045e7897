#!/usr/bin/env bash
# The nested guest's initramfs (issue 10): static busybox, vmm/guest-init as
# /init, and vmm/vmclock-reader.c built static as /bin/vmclock-reader.
#   qemu10-guest-initramfs.sh [IMAGE]   default build/qemu10/guest-initramfs.cpio.gz
set -euo pipefail
. "$(dirname "$0")/lib.sh"

Q=$BUILD/qemu10
image=${1:-$Q/guest-initramfs.cpio.gz}
root=${image%.cpio.gz}.d
busybox=/bin/busybox
[ -x "$busybox" ] || die "no $busybox: install busybox-static (scripts/deps.sh)"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static: install busybox-static"

mkdir -p "$Q/out"
say "building vmclock-reader (static)"
nice -n 19 gcc -O2 -Wall -Wextra -Werror -static -o "$Q/out/vmclock-reader" \
	"$ROOT/vmm/vmclock-reader.c"

rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,proc,sys,dev,tmp}
cp "$busybox" "$root/bin/busybox"
for app in $("$busybox" --list); do
	[ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"
done
install -m 755 "$ROOT/vmm/guest-init" "$root/init"
install -m 755 "$Q/out/vmclock-reader" "$root/bin/vmclock-reader"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$image"
say "guest initramfs: $image, $(du -h "$image" | cut -f1)"
