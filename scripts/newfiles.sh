#!/usr/bin/env bash
# The new-file tree: the files the series adds, at their kernel paths, at the
# top of this repository, so readers can browse the new code.
#   newfiles.sh export TREE   copy them out of TREE (series applied), drop stale ones
#   newfiles.sh check TREE    differences between the repository and TREE
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=$1
src=$2
dirs=(arch virt include tools Documentation kernel)

# The series' own MAINTAINERS entry, kept at the top as MAINTAINERS-snippet.
maintainers_entry() {
	sed -n '/^KVM X86 VMCLOCK (KVM\/vmclock)$/,/^$/p' "$src/MAINTAINERS" | sed -e '${/^$/d}'
}

added=$(git -C "$src" diff --name-only --diff-filter=A "$BASE_TAG" HEAD | sort)
present=$(cd "$ROOT" && { find "${dirs[@]}" -type f 2>/dev/null || true; } | sort)

case $mode in
export)
	for f in $present; do
		grep -qx "$f" <<<"$added" || { rm -f "$ROOT/$f"; say "removed $f"; }
	done
	for f in $added; do
		mkdir -p "$ROOT/$(dirname "$f")"
		cp "$src/$f" "$ROOT/$f"
	done
	(cd "$ROOT" && find "${dirs[@]}" -type d -empty -delete 2>/dev/null) || true
	maintainers_entry >"$ROOT/MAINTAINERS-snippet"
	;;
check)
	bad=0
	for f in $added; do
		case $f in
		arch/*|virt/*|include/*|tools/*|Documentation/*|kernel/*) ;;
		*) continue ;;
		esac
		if [ ! -f "$ROOT/$f" ]; then echo "missing from the repository: $f"; bad=1
		elif ! cmp -s "$src/$f" "$ROOT/$f"; then echo "differs from what the series creates: $f"; bad=1
		fi
	done
	for f in $present; do
		grep -qx "$f" <<<"$added" || { echo "not created by the series: $f"; bad=1; }
	done
	maintainers_entry | cmp -s - "$ROOT/MAINTAINERS-snippet" ||
		{ echo "MAINTAINERS-snippet differs from the series' MAINTAINERS entry"; bad=1; }
	exit $bad
	;;
*) die "usage: newfiles.sh export|check TREE" ;;
esac
