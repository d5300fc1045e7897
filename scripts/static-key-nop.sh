#!/usr/bin/env bash
# Show that a host without an automatic-mode vmclock pays nothing on guest
# entry or per tick: every branch on kvm_vmclock_auto_key in the built kvm.ko
# (and on clock_line_key, the clock line's, in vmlinux.o) must be a NOP in
# the object (the key is off until a VM switches to automatic mode, and
# static_branch_unlikely() compiles to a NOP that the kernel patches into a
# jump only then; for the kernel proper objtool makes it a NOP in vmlinux.o,
# not in the single objects). One line on stdout, "ok NAME # ..." or
# "not ok NAME # ...", and each branch site on stderr.
#   static-key-nop.sh [OBJECT [KEY [NAME]]]
#   default: build/obj/arch/x86/kvm/kvm.ko kvm_vmclock_auto_key static-key-nop
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ko=${1:-$OBJ/arch/x86/kvm/kvm.ko}
key=${2:-kvm_vmclock_auto_key}
name=${3:-static-key-nop}
[ -f "$ko" ] || { echo "not ok $name # no $ko"; exit 0; }

# Each jump_entry is { s32 code; s32 target; long key; }, relative, so in
# the relocatable kvm.ko every entry has three relocations: the code and
# target (PC32 against a text section) and the key (against its symbol).
readelf -rW "$ko" >"$BUILD/static-key-relocs.txt"
objdump -d --no-show-raw-insn "$ko" >"$BUILD/static-key-disasm.txt"
python3 - "$BUILD/static-key-relocs.txt" "$BUILD/static-key-disasm.txt" "$key" "$name" "$(basename "$ko")" <<'PY'
import re, sys
relocs, disasm, key, name, obj = sys.argv[1:6]

# Relocations of __jump_table: offset -> (symbol, addend).
entries, in_jt = {}, False
for line in open(relocs):
    if line.startswith("Relocation section"):
        in_jt = "'.rela__jump_table'" in line
        continue
    if not in_jt:
        continue
    f = line.split()
    if len(f) < 7 or not re.match(r"^[0-9a-f]+$", f[0]):
        continue
    off = int(f[0], 16)
    sym, sign, addend = f[4], f[5], int(f[6], 16)
    entries[off] = (sym, addend if sign == "+" else -addend)

sites = []
for off, (sym, _) in sorted(entries.items()):
    if off % 16 == 8 and sym == key:
        code = entries.get(off - 8)
        if code:
            sites.append(code)

# Instructions by section and offset, with the function around them.
insns, section, func = {}, None, None
for line in open(disasm):
    m = re.match(r"^Disassembly of section (\S+):", line)
    if m:
        section = m.group(1)
        continue
    m = re.match(r"^[0-9a-f]+ <(.+)>:", line)
    if m:
        func = m.group(1)
        continue
    m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
    if m and section:
        insns[(section, int(m.group(1), 16))] = (func, m.group(2).strip())

if not sites:
    print("not ok %s # no branch on %s in %s" % (name, key, obj))
    sys.exit(0)
bad = 0
for sec, addr in sites:
    func, insn = insns.get((sec, addr), ("?", "no instruction at this offset"))
    nop = insn.startswith(("nop", "xchg   %ax,%ax"))
    bad += not nop
    print("  %s branch in <%s> at %s+0x%x: %s" % (key, func, sec, addr, insn), file=sys.stderr)
if bad:
    print("not ok %s # %d of %d branches on %s are not a NOP" % (name, bad, len(sites), key))
else:
    print("ok %s # %d branch(es) on %s in %s, all NOPs while no VM uses automatic mode"
          % (name, len(sites), key, obj))
PY
