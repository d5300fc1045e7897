#!/usr/bin/env bash
# QEMU 10 for the emulated test host (issue 10): the VMM that runs inside it
# on the patched KVM, with "-device vmclock".
#
#   qemu10-fetch.sh      -> build/qemu10/root   the packages, extracted
#                        -> build/qemu10/stage  what the emulated host's
#                           initramfs needs: qemu-system-x86_64, the shared
#                           libraries ldd names (at their paths), the loader
#                           and the firmware (usr/share/qemu), + MANIFEST
#
# Packages (Debian bookworm-backports, never installed: dpkg-deb -x only; the
# outer emulator stays Debian 12's QEMU 7.2):
#   1. QEMU10_DEBS=DIR, default ../shared/qemu: the four .debs there,
#      checked against its SHA256SUMS (a mismatch stops);
#   2. else bookworm-backports from this machine's own Debian mirror (taken
#      from /etc/apt/sources.list*, see lib.sh), through a private apt
#      configuration under build/qemu10/apt: 10.0.2+ds-2+deb13u1~bpo12+1, or
#      the newest 10.x with a warning if that version is gone.
#   FORCE_APT=1 takes path 2 even when the directory exists.
# The libraries the binary needs are ordinary bookworm packages (the same as
# QEMU 7.2's); missing ones are installed with apt-get from the machine's own
# sources, as scripts/deps.sh does.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

Q=$BUILD/qemu10
DEBS=${QEMU10_DEBS:-$ROOT/../shared/qemu}
QEMU_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1
SEABIOS_VERSION=1.16.3-2~bpo12+1
PKGS=(qemu-system-x86 qemu-system-common qemu-system-data seabios)
# What QEMU 10 may load for "-M pc -kernel ... -nodefaults" (with qboot or
# SeaBIOS): the BIOS, the option ROMs of direct kernel boot, the vapic ROM.
FIRMWARE=(bios-256k.bin qboot.rom kvmvapic.bin linuxboot_dma.bin linuxboot.bin
	multiboot.bin multiboot_dma.bin pvh.bin)

root=$Q/root
stage=$Q/stage
mkdir -p "$Q"

# The .deb files to extract, one a line, on stdout.
local_debs() {
	local dir=$1 f p
	say "verifying the QEMU 10 packages in $dir against its SHA256SUMS"
	[ -f "$dir/SHA256SUMS" ] || die "no SHA256SUMS in $dir"
	for p in "${PKGS[@]}"; do
		f=$(ls "$dir/${p}_"*.deb 2>/dev/null | head -1)
		[ -n "$f" ] || die "no ${p}_*.deb in $dir"
		(cd "$dir" && grep " $(basename "$f")\$" SHA256SUMS | sha256sum -c --quiet -) >&2 ||
			die "$f does not match $dir/SHA256SUMS"
		echo "$f"
	done
}

# Download from bookworm-backports; the .deb files on stdout.
apt_debs() {
	local apt=$Q/apt qver sver p
	say "downloading QEMU 10 from bookworm-backports (private apt configuration in $apt)"
	private_apt "$apt" bookworm-backports
	local opts=("${PRIVATE_APT_OPTS[@]}")
	apt-get "${opts[@]}" update -qq >&2 || die "apt-get update of bookworm-backports failed"
	if apt-cache "${opts[@]}" madison qemu-system-x86 | grep -qF " $QEMU_VERSION "; then
		qver=$QEMU_VERSION
	else
		qver=$(apt-cache "${opts[@]}" madison qemu-system-x86 | awk '{ print $3 }' |
			grep '^1:10\.' | sort -V | tail -1)
		[ -n "$qver" ] || die "no qemu-system-x86 10.x in bookworm-backports"
		warn "qemu-system-x86 $QEMU_VERSION is gone from bookworm-backports; falling back to $qver"
	fi
	if apt-cache "${opts[@]}" madison seabios | grep -qF " $SEABIOS_VERSION "; then
		sver=$SEABIOS_VERSION
	else
		sver=$(apt-cache "${opts[@]}" madison seabios | awk '{ print $3 }' | sort -V | tail -1)
		[ -n "$sver" ] || die "no seabios in bookworm-backports"
		warn "seabios $SEABIOS_VERSION is gone from bookworm-backports; using $sver"
	fi
	rm -f "$apt/archives/"*.deb
	(cd "$apt/archives" && apt-get "${opts[@]}" download -q \
		"qemu-system-x86=$qver" "qemu-system-common=$qver" "qemu-system-data=$qver" \
		"seabios=$sver" >&2) || die "apt-get download of QEMU $qver failed"
	for p in "${PKGS[@]}"; do
		ls "$apt/archives/${p}_"*.deb | head -1
	done
}

if [ "${FORCE_APT:-0}" != 1 ] && [ -d "$DEBS" ]; then
	debs=$(local_debs "$DEBS")
else
	[ -d "$DEBS" ] || say "no $DEBS"
	debs=$(apt_debs)
fi

say "extracting into $root"
rm -rf "$root"
mkdir -p "$root"
for deb in $debs; do
	dpkg-deb -x "$deb" "$root"
done
qemu=$root/usr/bin/qemu-system-x86_64
[ -x "$qemu" ] || die "no qemu-system-x86_64 in the packages"

# The shared libraries: bookworm packages; install those that are missing.
missing=()
for p in $(dpkg-deb -f "$(grep '/qemu-system-x86_' <<<"$debs")" Depends | tr ',' '\n' |
	sed 's/([^)]*)//; s/|.*//; s/[[:space:]]//g' | grep -v -e '^qemu-' -e '^seabios$' -e '^ipxe' -e '^$'); do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing the libraries QEMU 10 needs: ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >"$Q/apt-install.log" 2>&1 ||
		{ tail -20 "$Q/apt-install.log"; die "apt-get install failed (log: $Q/apt-install.log)"; }
fi
if ldd "$qemu" | grep -q 'not found'; then
	ldd "$qemu" | grep 'not found' >&2
	die "qemu-system-x86_64 misses shared libraries"
fi
"$qemu" --version | head -1 | sed 's/^/    /' >&2

say "staging the binary, its libraries and firmware in $stage"
rm -rf "$stage"
mkdir -p "$stage/usr/bin" "$stage/usr/share/qemu" "$stage/lib64"
cp "$qemu" "$stage/usr/bin/"
for lib in $(ldd "$qemu" | awk '/=>/ { print $3 }'); do
	mkdir -p "$stage$(dirname "$lib")"
	cp -L "$lib" "$stage$lib"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"
for fw in "${FIRMWARE[@]}"; do
	if [ -e "$root/usr/share/qemu/$fw" ]; then
		cp -L "$root/usr/share/qemu/$fw" "$stage/usr/share/qemu/"
	elif [ -e "$root/usr/share/seabios/$fw" ]; then
		cp -L "$root/usr/share/seabios/$fw" "$stage/usr/share/qemu/"
	else
		warn "firmware $fw is not in the packages"
	fi
done
# QEMU looks for firmware next to its binary (../share/qemu) and with -L.
(cd "$stage" && find . -type f | sort) >"$stage/MANIFEST"
say "staged $(grep -c . "$stage/MANIFEST") files, $(du -sh "$stage" | cut -f1)" \
	"($(grep -c '\.so' "$stage/MANIFEST") libraries)"
