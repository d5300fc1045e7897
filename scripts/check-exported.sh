#!/usr/bin/env bash
# Fail if build/linux has commits or edits that patches/ does not hold.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -z "$(git -C "$TREE" status --porcelain --untracked-files=no)" ] ||
	die "build/linux has uncommitted changes"
want=$(for f in $(series_files); do git patch-id --stable <"$PATCHES/$f" | cut -d' ' -f1; done)
for c in $(git -C "$TREE" rev-list "$BASE_TAG..HEAD"); do
	id=$(git -C "$TREE" show "$c" | git patch-id --stable | cut -d' ' -f1)
	grep -qx "$id" <<<"$want" || die "not exported: $(git -C "$TREE" log -1 --format='%h %s' "$c")"
done
