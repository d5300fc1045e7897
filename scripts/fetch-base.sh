#!/usr/bin/env bash
# Provide the base kernel tarball as build/linux-source-7.2.tar.xz.
#
# Sources, in order:
#   1. LINUX_SOURCE=<file>: a linux-source-7.2 .deb or the .tar.xz inside it.
#      A .deb is checked against a SHA256SUMS file next to it, if any.
#   2. Debian unstable from this machine's own Debian mirror, through a
#      private apt configuration under build/apt (the machine's package
#      sources are never touched); 7.2.13-1, or
#      the newest 7.2.x with a warning if 7.2.13-1 is gone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

OUT=$BUILD/linux-source-7.2.tar.xz
mkdir -p "$BUILD"

extract_deb() {
	local deb=$1
	say "extracting the kernel tarball from $(basename "$deb")"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -xO ./usr/src/linux-source-7.2.tar.xz >"$OUT.tmp"
	mv "$OUT.tmp" "$OUT"
}

verify_deb() {
	local deb=$1 sums
	sums=$(dirname "$deb")/SHA256SUMS
	[ -f "$sums" ] || { warn "no SHA256SUMS next to $deb: not verified"; return 0; }
	say "verifying $(basename "$deb") against $sums"
	(cd "$(dirname "$deb")" && grep " $(basename "$deb")\$" SHA256SUMS | sha256sum -c --quiet -) ||
		die "$deb does not match $sums"
}

download_from_sid() {
	local apt=$BUILD/apt ver
	say "downloading $BASE_PKG from Debian unstable (private apt configuration in $apt)"
	private_apt "$apt" sid
	local opts=("${PRIVATE_APT_OPTS[@]}")
	apt-get "${opts[@]}" update -qq || die "apt-get update of Debian unstable failed"
	if apt-cache "${opts[@]}" madison "$BASE_PKG" | grep -q " $BASE_VERSION "; then
		ver=$BASE_VERSION
	else
		ver=$(apt-cache "${opts[@]}" madison "$BASE_PKG" | awk '{print $3}' | grep '^7\.2\.' | sort -V | tail -1)
		[ -n "$ver" ] || die "no $BASE_PKG 7.2.x in Debian unstable and no LINUX_SOURCE given"
		warn "$BASE_PKG $BASE_VERSION is gone from Debian unstable; falling back to $ver"
	fi
	(cd "$apt/archives" && apt-get "${opts[@]}" download "$BASE_PKG=$ver") ||
		die "apt-get download $BASE_PKG=$ver failed"
	extract_deb "$(ls "$apt/archives/${BASE_PKG}_"*"_all.deb" | head -1)"
}

if [ -f "$OUT" ]; then
	exit 0
fi
if [ -n "${LINUX_SOURCE:-}" ]; then
	[ -f "$LINUX_SOURCE" ] || die "LINUX_SOURCE=$LINUX_SOURCE: no such file"
	case $LINUX_SOURCE in
	*.deb) verify_deb "$LINUX_SOURCE"; extract_deb "$LINUX_SOURCE" ;;
	*.tar.xz) cp "$LINUX_SOURCE" "$OUT" ;;
	*) die "LINUX_SOURCE must be a .deb or a .tar.xz: $LINUX_SOURCE" ;;
	esac
else
	download_from_sid
fi
