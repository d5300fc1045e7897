#!/usr/bin/env bash
# Build sparse for the kernel's C=2 checks and print the binary's path.
# Debian 12's sparse (0.6.4) predates __typeof_unqual__, which Linux 7.2
# uses, and the kernel refuses it (scripts/checker-valid.sh). So take the
# source package of Debian unstable (0.6.5~rc1, verified by apt against the
# signed Sources index) through a private apt configuration on this
# machine's own mirror, and build only the sparse binary (under a minute).
# Debian's packaging patches are not applied: they do not touch sparse.c.
#   sparse.sh [TREE]   TREE (default build/linux) provides checker-valid.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$(realpath "${1:-$TREE}")
dir=$BUILD/sparse
bin=$dir/sparse

valid() { [ -x "$1" ] && [ "$(sh "$src/scripts/checker-valid.sh" "$1")" = 1 ]; }

if valid "$bin"; then
	echo "$bin"
	exit 0
fi

say "fetching the sparse source package of Debian unstable" >&2
private_apt "$BUILD/apt-sparse" unstable
sed -i 's/^deb /deb-src /' "$BUILD/apt-sparse/sources.list"
apt-get "${PRIVATE_APT_OPTS[@]}" update -qq >&2 || die "apt-get update (deb-src unstable) failed"
rm -rf "$dir.src"
mkdir -p "$dir.src"
(cd "$dir.src" && apt-get "${PRIVATE_APT_OPTS[@]}" source --download-only sparse >&2) ||
	die "apt-get source sparse failed"
tar -xzf "$dir.src"/sparse_*.orig.tar.gz -C "$dir.src"
say "building sparse" >&2
make -s -C "$(ls -d "$dir.src"/sparse-*/ | head -1)" -j"$JOBS" sparse \
	HAVE_LIBXML=no HAVE_SQLITE=no HAVE_GTK=no HAVE_LLVM=no >&2
mkdir -p "$dir"
cp "$(ls -d "$dir.src"/sparse-*/ | head -1)/sparse" "$bin"
valid "$bin" || die "the sparse built from Debian unstable is refused by $src/scripts/checker-valid.sh"
echo "$bin"
