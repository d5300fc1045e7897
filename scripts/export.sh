#!/usr/bin/env bash
# "make export": the work branch of build/linux back into the repository:
# git format-patch into patches/ (stable names and bytes), the cover letter's
# subject and text kept from patches/0000-cover-letter.patch, patches/series,
# and the new-file tree. Exporting an unchanged series changes nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -d "$TREE/.git" ] || die "no build/linux: run 'make tree' first"
[ -z "$(git -C "$TREE" status --porcelain --untracked-files=no)" ] ||
	die "build/linux has uncommitted changes: commit them (one commit per patch) first"
count=$(git -C "$TREE" rev-list --count "$BASE_TAG..HEAD")
[ "$count" -gt 0 ] || die "build/linux has no commits on top of the base"

cover=$PATCHES/0000-cover-letter.patch
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The hand-written parts of the cover letter: subject and text.
subject="KVM: x86: vmclock: keep a guest vmclock structure up to date"
blurb=$tmp/blurb
echo "(cover letter text: edit patches/0000-cover-letter.patch)" >"$blurb"
if [ -f "$cover" ]; then
	subject=$(sed -n 's/^Subject: \[PATCH[^]]*\] //p' "$cover" | head -1)
	# From the first blank line after the headers to the shortlog.
	awk 'body && /^[^ ].* \([0-9]+\):$/ { exit }
	     body { print }
	     !body && /^$/ { body = 1 }' "$cover" | sed -e '$ { /^$/d }' >"$blurb"
fi

git -C "$TREE" format-patch -q --zero-commit --no-signature --cover-letter \
	--thread=shallow --no-numbered-files -o "$tmp/out" "$BASE_TAG..HEAD"
python3 - "$tmp/out/0000-cover-letter.patch" "$subject" "$blurb" <<'PY'
import re, sys
path, subject, blurb = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().rstrip('\n')
s = open(path).read()
s = s.replace('*** SUBJECT HERE ***', subject).replace('*** BLURB HERE ***', blurb)
# git stamps the cover letter with the time of the export: use the date
# of the series' last patch instead, so that re-exporting is stable.
open(path, 'w').write(s)
PY
last_date=$(git -C "$TREE" log -1 --format='%ad' --date=rfc2822 HEAD)
sed -i "0,/^Date: .*/s//Date: $last_date/" "$tmp/out/0000-cover-letter.patch"
# Message-Ids would change on every export: drop them (git send-email adds its own).
sed -i -e '/^Message-ID: /Id' -e '/^In-Reply-To: /Id' -e '/^References: /Id' "$tmp"/out/*.patch

mkdir -p "$PATCHES"
rm -f "$PATCHES"/*.patch
cp "$tmp"/out/*.patch "$PATCHES/"
(cd "$PATCHES" && ls [0-9][0-9][0-9][0-9]-*.patch | grep -v '^0000-cover-letter.patch$') >"$PATCHES/series"
"$ROOT/scripts/newfiles.sh" export "$TREE"
say "exported $count patches to patches/ (and the new-file tree); review with: git status, git diff"
