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

# The Debian mirror this machine's apt uses (its first "main" source that is
# not the security archive), from /etc/apt/sources.list (one-line format) or
# /etc/apt/sources.list.d/*.list / *.sources (one-line or deb822 format).
# No mirror host is written into the repository: private apt configurations
# take the machine's own, with another suite.
debian_mirror() {
	local f uri
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" {
				for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $(i-1) !~ /\[[^]]*$/) break
				if ($i ~ /security/ || $0 !~ / main( |$)/) next
				if ($(i+1) ~ /^(bookworm|trixie|forky|sid|unstable|testing|stable)/) { print $i; exit }
			}' "$f")
		[ -n "$uri" ] && { echo "${uri%/}"; return 0; }
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
			{
				uris = ""; suites = ""; comps = ""; enabled = 1
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
					if ($i ~ /^Suites:/) suites = $i
					if ($i ~ /^Components:/) comps = $i
					if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
				}
				if (enabled && uris !~ /security/ && comps ~ /main/ &&
				    suites ~ /(bookworm|trixie|forky|sid|unstable|testing|stable)/) {
					split(uris, u, /[ \t]+/); print u[1]; exit
				}
			}' "$f")
		[ -n "$uri" ] && { echo "${uri%/}"; return 0; }
	done
	return 1
}

# A private apt configuration in DIR for SUITE of this machine's Debian
# mirror; sets PRIVATE_APT_OPTS to the apt-get options that use it.
private_apt() {
	local dir=$1 suite=$2 mirror
	mirror=$(debian_mirror) || die "no Debian mirror found in this machine's apt sources"
	mkdir -p "$dir/lists/partial" "$dir/archives/partial"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
		>"$dir/sources.list"
	PRIVATE_APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$dir/lists" -o "Dir::Cache::Archives=$dir/archives"
		-o APT::Sandbox::User=root)
}
