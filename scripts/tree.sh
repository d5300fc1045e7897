#!/usr/bin/env bash
# Make build/linux: the pristine base committed and tagged "base", with the
# series from patches/ applied on branch "vmclock". Idempotent: a tree whose
# commits already are the series is left alone; one holding commits that are
# not in patches/ is never thrown away (export them first, or FORCE=1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TARBALL=$BUILD/linux-source-7.2.tar.xz

# Make a git tree of the pristine base in $1, commit and tag it. The commit
# has a fixed author, committer and date: its id depends on the tarball only.
make_base_tree() {
	local dir=$1
	say "unpacking the base into $dir (about 20 s)"
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	tar -xf "$TARBALL" -C "$dir.tmp" --strip-components=1
	# Debian's packaging block at the end of .gitignore ignores every
	# top-level path; it is not part of upstream Linux.
	# Drop it with the "#" line and the blank line that open it.
	awk '/^# Debian packaging: ignore everything/ { exit } { print }' \
		"$dir.tmp/.gitignore" | sed -e '$ { /^#$/d }' | sed -e '$ { /^$/d }' \
		>"$dir.tmp/.gitignore.new"
	mv "$dir.tmp/.gitignore.new" "$dir.tmp/.gitignore"
	say "committing the base (about 1 min)"
	(
		cd "$dir.tmp"
		git init -q -b vmclock
		git config user.name "$GIT_COMMITTER_NAME"
		git config user.email "$GIT_COMMITTER_EMAIL"
		git config core.abbrev 12
		git add -A -f .
		GIT_AUTHOR_NAME="Debian kernel team" GIT_AUTHOR_EMAIL="debian-kernel@lists.debian.org" \
		GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" \
			git commit -q -m "Linux $(make -s kernelversion) as Debian's $BASE_PKG ships it"
		git tag "$BASE_TAG"
		git gc -q --auto
	)
	mv "$dir.tmp" "$dir"
}

# Patch-ids of the commits base..HEAD of the tree in $1, one per line.
tree_patch_ids() {
	local c
	for c in $(git -C "$1" rev-list --reverse "$BASE_TAG..HEAD"); do
		git -C "$1" show "$c" | git patch-id --stable | cut -d' ' -f1
	done
}

series_patch_ids() {
	local f
	for f in $(series_files); do
		git patch-id --stable <"$PATCHES/$f" | cut -d' ' -f1
	done
}

# git am the series onto the base in the tree $1.
apply_series() {
	local dir=$1 f
	git -C "$dir" reset -q --hard "$BASE_TAG"
	for f in $(series_files); do
		git -C "$dir" am -q --keep-cr "$PATCHES/$f" ||
			{ git -C "$dir" am --abort || true; die "$f does not apply"; }
	done
}

[ -f "$TARBALL" ] || "$ROOT/scripts/fetch-base.sh"
[ -d "$TREE/.git" ] || make_base_tree "$TREE"

tree_ids=$(tree_patch_ids "$TREE")
want_ids=$(series_patch_ids)
if [ "$tree_ids" = "$want_ids" ]; then
	say "build/linux is up to date with patches/ ($(series_files | wc -l) patches)"
	exit 0
fi
if [ -n "$(git -C "$TREE" status --porcelain --untracked-files=no)" ] && [ "${FORCE:-0}" != 1 ]; then
	die "build/linux has uncommitted changes; commit and 'make export' them, or FORCE=1 to discard"
fi
for id in $tree_ids; do
	if ! grep -qx "$id" <<<"$want_ids" && [ "${FORCE:-0}" != 1 ]; then
		die "build/linux has commits that are not in patches/; run 'make export' first, or FORCE=1 to discard them"
	fi
done
say "applying $(series_files | wc -l) patches to build/linux"
apply_series "$TREE"
