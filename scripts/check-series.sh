#!/usr/bin/env bash
# Host-side checks of the series, one result line each on stdout
# ("ok NAME" / "not ok NAME # why"), details on stderr:
#  - it applies with git am to the pristine base, patch by patch;
#  - every patch builds on its own (incremental build of the KVM objects,
#    and of the selftests when the patch touches them);
#  - checkpatch.pl --strict is clean on every patch;
#  - the new-file tree in the repository is what the series creates.
# Skipped (results repeated) when the series and the config are unchanged
# since the last run that passed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stamp=$BUILD/check-series.ok
inputs() {
	cat "$PATCHES"/*.patch "$PATCHES/series" "$ROOT/scripts/test-kernel.config" \
		"$ROOT/scripts/checkpatch.conf" "$ROOT"/scripts/{check-series,kernel,selftests,newfiles}.sh
	(cd "$ROOT" && find arch virt include tools Documentation kernel -type f 2>/dev/null || true) |
		sort | (cd "$ROOT" && xargs -r sha1sum)
}
sum=$(inputs | sha1sum | cut -c1-40)
if [ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "$sum" ]; then
	say "series unchanged since its checks last passed: not repeating them"
	tail -n +2 "$stamp"
	exit 0
fi

results=()
ok() { local l="ok $1${2:+ # $2}"; results+=("$l"); echo "$l"; }
notok() { results+=("not ok $1 # $2"); echo "not ok $1 # $2"; printf 'FAIL: %s: %s\n' "$1" "$2" >&2; }

# The worktree for patch-by-patch work, reset to the pristine base.
[ -d "$BISECT_TREE/.git" ] || [ -f "$BISECT_TREE/.git" ] ||
	git -C "$TREE" worktree add -q --detach "$BISECT_TREE" "$BASE_TAG"
git -C "$BISECT_TREE" am --abort >/dev/null 2>&1 || true
git -C "$BISECT_TREE" checkout -q --detach -f "$BASE_TAG"
git -C "$BISECT_TREE" clean -q -fdx

# checkpatch asks "added, moved or deleted file(s), does MAINTAINERS need
# updating?" (FILE_PATH_CHANGES) of every patch that adds a file and does
# not touch MAINTAINERS. If that is its only finding in log $1, answer it
# with get_maintainer.pl: every file the patch adds (HEAD of the bisect
# tree) must have a maintainer from an existing entry. Prints the answer.
maintainers_answer() {
	local log=$1 file who answer=()
	awk '/^(ERROR|WARNING|CHECK):/ && !/^WARNING:FILE_PATH_CHANGES:/ { bad = 1 } END { exit bad }' \
		"$log" || return 1
	grep -q '^WARNING:FILE_PATH_CHANGES:' "$log" || return 1
	for file in $(git -C "$BISECT_TREE" show --diff-filter=A --name-only --format= HEAD); do
		who=$(cd "$BISECT_TREE" && ./scripts/get_maintainer.pl --nogit --nogit-fallback \
			--norolestats --nol -f "$file" 2>/dev/null | grep -m1 '<' || true)
		[ -n "$who" ] || return 1
		answer+=("$file: $who")
	done
	[ ${#answer[@]} -gt 0 ] || return 1
	printf '%s; ' "${answer[@]}" | sed 's/; $//'
}

ignore=()
types=$(sed '/^#/d' "$ROOT/scripts/checkpatch.conf" | tr -s ', \n' ',' | sed 's/^,//; s/,$//')
[ -z "$types" ] || ignore=(--ignore "$types")

failed=0
n=0
for f in $(series_files); do
	n=$((n + 1))
	id=$(printf '%04d' "$n")
	if ! git -C "$BISECT_TREE" am -q "$PATCHES/$f" >"$BUILD/am.log" 2>&1; then
		notok "patch-$id-applies" "$f does not apply to the base + earlier patches: $(head -3 "$BUILD/am.log" | tr '\n' ' ')"
		git -C "$BISECT_TREE" am --abort >/dev/null 2>&1 || true
		failed=1
		break
	fi
	ok "patch-$id-applies"

	# checkpatch on the patch file itself, from the patched tree.
	if (cd "$BISECT_TREE" && ./scripts/checkpatch.pl --strict --no-color --quiet --show-types \
			"${ignore[@]}" "$PATCHES/$f") >"$BUILD/checkpatch-$id.log" 2>&1; then
		ok "patch-$id-checkpatch"
	elif covered=$(maintainers_answer "$BUILD/checkpatch-$id.log"); then
		ok "patch-$id-checkpatch" "only FILE_PATH_CHANGES, answered: $covered"
	else
		notok "patch-$id-checkpatch" "$f: $(grep -m3 -E '^(ERROR|WARNING|CHECK)' "$BUILD/checkpatch-$id.log" | tr '\n' ' ')(log: build/checkpatch-$id.log)"
		failed=1
	fi

	say "patch $id: building the KVM objects ($f)"
	dirs=(arch/x86/kvm/ virt/kvm/)
	git -C "$BISECT_TREE" show --stat=200 --format= HEAD | grep -q ' kernel/time/' && dirs+=(kernel/time/)
	if STRICT_CONFIG=0 "$ROOT/scripts/kernel.sh" "$BISECT_TREE" "$BISECT_OBJ" "${dirs[@]}" >"$BUILD/bisect-$id.log" 2>&1; then
		ok "patch-$id-builds"
	else
		notok "patch-$id-builds" "$f does not build: $(grep -m3 -E 'error|Error' "$BUILD/bisect-$id.log" | tr '\n' ' ')(log: build/bisect-$id.log)"
		failed=1
		continue
	fi
	if git -C "$BISECT_TREE" show --stat=200 --format= HEAD | grep -q ' tools/testing/selftests/kvm/'; then
		say "patch $id: building the selftests"
		if "$ROOT/scripts/selftests.sh" "$BISECT_TREE" "$BISECT_OBJ" "$BUILD/selftests-bisect" >"$BUILD/bisect-selftests-$id.log" 2>&1; then
			ok "patch-$id-selftests-build"
		else
			notok "patch-$id-selftests-build" "$f: selftests do not build: $(grep -m3 -E 'error' "$BUILD/bisect-selftests-$id.log" | tr '\n' ' ')(log: build/bisect-selftests-$id.log)"
			failed=1
		fi
	fi
done

# The new-file tree: exactly the files the series adds, with their content.
if [ "$failed" = 0 ] || git -C "$BISECT_TREE" rev-parse -q --verify HEAD >/dev/null; then
	diffs=$("$ROOT/scripts/newfiles.sh" check "$BISECT_TREE" 2>&1) && ok "new-file-tree" ||
		{ notok "new-file-tree" "$(echo "$diffs" | head -5 | tr '\n' ' ')"; failed=1; }
fi

if [ "$failed" = 0 ]; then
	{ echo "$sum"; printf '%s\n' "${results[@]}"; } >"$stamp"
else
	rm -f "$stamp"
fi
