# shellcheck shell=bash
# Common settings for the kvm-vmclock scripts. Sourced, never run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
TREE=$BUILD/linux             # the kernel work tree (git, branch "vmclock")
OBJ=$BUILD/obj                # O= directory of the test kernel
BISECT_TREE=$BUILD/bisect     # worktree used to apply and build patch by patch
BISECT_OBJ=$BUILD/obj-bisect
SELFTESTS_OUT=$BUILD/selftests
PATCHES=$ROOT/patches
BASE_TAG=base
BASE_VERSION=7.2.13-1
BASE_PKG=linux-source-7.2
JOBS=${JOBS:-$(nproc)}

# Fixed identity and dates for the base commit, so that its id depends
# on the tarball only and exported patches stay byte-for-byte stable.
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-kvm-vmclock developers}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-kvm-vmclock@localhost}

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# The series in order, as file names under patches/ (cover letter excluded).
series_files() {
	[ -f "$PATCHES/series" ] || return 0
	grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$PATCHES/series"
}

# The kernel's checkpatch needs ply for /usr/bin/python3 (spdxcheck.py):
# keep system tools first in PATH whatever python the user's shell prefers.
export PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH
