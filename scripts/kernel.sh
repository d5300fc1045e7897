#!/usr/bin/env bash
# Build the test kernel from a tree: tinyconfig + scripts/test-kernel.config
# (+ the series' own fragment, when the tree has it), with ccache.
#   kernel.sh [TREE OBJ [TARGETS...]]   default: build/linux build/obj bzImage
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$(realpath "${1:-$TREE}")
obj=$(realpath -m "${2:-$OBJ}")
shift 2 2>/dev/null || shift $#
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(bzImage modules)
fragment=$ROOT/scripts/test-kernel.config
strict=${STRICT_CONFIG:-1}

export CCACHE_DIR=${CCACHE_DIR:-$BUILD/ccache}
export CCACHE_BASEDIR=$BUILD
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export KBUILD_BUILD_TIMESTAMP="2026-01-01"
export KBUILD_BUILD_USER=kvm-vmclock KBUILD_BUILD_HOST=localhost
kmake() { make -s -C "$src" O="$obj" CC="ccache gcc" HOSTCC="ccache gcc" -j"$JOBS" "$@"; }

# The fragment, plus options of the series that exist in this tree only
# once their patch is applied (listed as "# series: CONFIG_X=y" lines), plus
# EXTRA_CONFIG (space-separated CONFIG_X=v, for the build variants), last so
# that they win.
wanted() {
	grep '^CONFIG_' "$fragment"
	sed -n 's/^# series: \(CONFIG_[A-Z0-9_]*=.*\)$/\1/p' "$fragment" |
		while IFS== read -r sym val; do
			grep -rqs "^config ${sym#CONFIG_}\$" "$src/arch/x86/kvm/Kconfig" "$src/virt/kvm/Kconfig" \
				"$src/kernel/time/Kconfig" &&
				echo "$sym=$val"
		done
	local extra
	for extra in ${EXTRA_CONFIG:-}; do
		echo "$extra"
	done
	return 0
}

# Whether .config has what $1 (CONFIG_X=v) asks for; =n means not set.
config_has() {
	case $1 in
	*=n) ! grep -q "^${1%=n}=" "$obj/.config" ;;
	*) grep -qx "$1" "$obj/.config" ;;
	esac
}

configure() {
	local want sum
	want=$(wanted)
	sum=$( (echo "$want"; git -C "$src" rev-parse HEAD:arch/x86/kvm/Kconfig 2>/dev/null) | sha1sum | cut -c1-40)
	[ -f "$obj/.config" ] && [ "$(cat "$obj/.fragment.sum" 2>/dev/null)" = "$sum" ] && return 0
	say "configuring $(basename "$obj"): tinyconfig + $(basename "$fragment")"
	mkdir -p "$obj"
	kmake tinyconfig >/dev/null
	echo "$want" >"$obj/.fragment"
	"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$obj/.fragment" >"$obj/.merge.log" 2>&1
	kmake olddefconfig >/dev/null
	local bad=0 line
	# The last request for each symbol is the one that counts.
	while read -r line; do
		config_has "$line" || { warn "config: $line requested but not set"; bad=1; }
	done < <(awk -F= '{ last[$1] = $0; order[$1] = NR } END { for (k in last) print last[k] }' <<<"$want")
	if [ "$bad" = 1 ] && [ "$strict" = 1 ]; then
		rm -f "$obj/.config"
		die "the test kernel config is not what scripts/test-kernel.config asks for"
	fi
	echo "$sum" >"$obj/.fragment.sum"
}

configure
say "building ${targets[*]} in $(basename "$obj") with $JOBS jobs (cold: ~7 min, warm: <1 min)"
start=$(date +%s)
kmake "${targets[@]}"
say "built ${targets[*]} in $(( $(date +%s) - start )) s"
