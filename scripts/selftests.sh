#!/usr/bin/env bash
# Build the KVM selftests of scripts/selftests.list from a kernel tree.
#   selftests.sh [TREE OBJ OUT]   default: build/linux build/obj build/selftests
# The headers come from OBJ (make headers_install there, never in the
# source tree, which would make later O= builds refuse to run).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$(realpath "${1:-$TREE}")
obj=$(realpath -m "${2:-$OBJ}")
out=$(realpath -m "${3:-$SELFTESTS_OUT}")
kvm=$src/tools/testing/selftests/kvm

[ -f "$obj/.config" ] || die "$obj is not configured: build the kernel first"
say "installing the UAPI headers of $(basename "$src") into $(basename "$obj")/usr"
make -s -C "$src" O="$obj" headers_install

# Only the tests this tree has: the series adds some of them.
targets=()
while read -r name _; do
	[ -f "$kvm/$name.c" ] && targets+=("$out/$name")
done < <(grep -v -e '^#' -e '^[[:space:]]*$' "$ROOT/scripts/selftests.list")

say "building ${#targets[@]} KVM selftests into $(basename "$out")"
mkdir -p "$out"
export CCACHE_DIR=${CCACHE_DIR:-$BUILD/ccache}
make -s -C "$kvm" OUTPUT="$out" CC="ccache gcc" -j"$JOBS" \
	KHDR_INCLUDES="-isystem $obj/usr/include" LINUX_HDR_PATH="$obj/usr/include/" \
	"${targets[@]}"
