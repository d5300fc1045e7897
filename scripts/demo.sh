#!/usr/bin/env bash
# "make demo": boot the patched kernel under QEMU and show VMs running
# inside it whose guests read a vmclock, next to the kvmclock.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

exec "$ROOT/scripts/inside.sh" demo "$ROOT/scripts/demo-inside" 900
