#!/usr/bin/env bash
# Install the Debian packages the build and the emulated test host need,
# only those that are missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

pkgs=(build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils
      dwarves ccache python3 python3-ply qemu-system-x86 busybox-static
      git rsync perl kmod python3-git)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mkdir -p "$BUILD"

say "installing missing packages: ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
	"${missing[@]}" >"$BUILD/apt-install.log" 2>&1 ||
	{ tail -20 "$BUILD/apt-install.log"; die "apt-get install failed (log: $BUILD/apt-install.log)"; }
