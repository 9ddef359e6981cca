#!/usr/bin/env bash
# Runs the x86 tests of an already-built kvm-unit-tests tree under Ringvisor and prints PASS/FAIL/SKIP per test and
# a summary. It never downloads or builds kvm-unit-tests: build it yourself (./configure --arch=x86_64 && make; for
# the 32-bit tests a second tree with --arch=i386) and pass the tree(s) here.
#
# Usage: scripts/kvm-unit-tests.sh KUT_DIR [--engine bt|kvm] [--i386 KUT32_DIR] [--only REGEX] [--timeout-scale N]
#                                   [--max-timeout S] [--logs DIR]
#   KUT_DIR      an x86_64 kvm-unit-tests tree with x86/*.flat built
#   --i386 DIR   an i386 tree (cmpxchg8b, taskswitch, taskswitch2); without it those tests are not listed
#   --only RE    run only the tests whose name matches the extended regex RE
#   --max-timeout S  cap every test's timeout at S seconds (the kvm engine on a host that emulates CPL 0 needs it)
#   --logs DIR   keep each test's console output in DIR/NAME.log (default: a temporary directory, printed at the end)
# Environment: RINGVISOR (command to run, default: the repo's ./ringvisor launcher).
#
# How a test is run (mirrors kvm-unit-tests' x86/run with QEMU): the .flat multiboot image is the kernel, the test
# arguments are the multiboot command line (--append; Ringvisor's multiboot loader puts the kernel's file name first,
# as GRUB and QEMU do, and kvm-unit-tests skips that word), isa-debug-exit at 0xf4 reports the result: status
# (code << 1) | 1, so 1 = PASS, 3 = FAIL, 77 = SKIP (kvm-unit-tests exits with 77 >> 1 when all was skipped). --debug-exit also attaches QEMU's pc-testdev (IRQ
# lines at 0x2000, scratch port 0xe0, MMIO scratch at 0xff000000). The vCPU count and RAM size reach the guest
# through fw_cfg (ports 0x510/0x511).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ringvisor="${RINGVISOR:-$root/ringvisor}"

usage() { sed -n '6,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
kut="$1"; shift
engine=bt
kut32=""
only=""
scale=1
maxlimit=0
logs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine="${2:-}"; shift 2 ;;
    --i386) kut32="${2:-}"; shift 2 ;;
    --only) only="${2:-}"; shift 2 ;;
    --timeout-scale) scale="${2:-}"; shift 2 ;;
    --logs) logs="${2:-}"; shift 2 ;;
    --max-timeout) maxlimit="${2:-}"; shift 2 ;;
    *) usage ;;
  esac
done
case "$engine" in bt|kvm) ;; *) echo "--engine must be bt or kvm" >&2; exit 2 ;; esac
if [ ! -f "$kut/x86/msr.flat" ]; then
  echo "$kut does not look like a built x86_64 kvm-unit-tests tree (no x86/msr.flat)" >&2
  exit 2
fi
if [ -z "$logs" ]; then logs="$(mktemp -d /tmp/kvm-unit-tests-logs.XXXXXX)"; fi
mkdir -p "$logs"

# name | tree (64 or 32) | image | vCPUs | RAM | timeout (s) | arguments
# Chosen from x86/unittests.cfg: tests for features outside our CPU model (VMX/SVM nesting, Hyper-V, IOMMU, PMU,
# CET, LAM, PKS/PKU, LA57...) are kept where the test itself checks CPUID and skips, so a wrong CPUID bit shows up.
tests=$(cat <<'LIST'
apic|64|apic.flat|2|256M|90|
ioapic|64|ioapic.flat|3|256M|90|
smptest|64|smptest.flat|2|256M|60|
smptest3|64|smptest.flat|3|256M|60|
vmexit_cpuid|64|vmexit.flat|1|256M|120|cpuid
vmexit_ipi|64|vmexit.flat|2|256M|120|ipi
access|64|access_test.flat|1|256M|600|
smap|64|smap.flat|1|256M|120|
pku|64|pku.flat|1|256M|60|
pks|64|pks.flat|1|256M|60|
asyncpf|64|asyncpf.flat|1|256M|60|
emulator|64|emulator.flat|1|256M|120|
eventinj|64|eventinj.flat|1|256M|60|
hypercall|64|hypercall.flat|1|256M|60|
idt_test|64|idt_test.flat|1|256M|60|
memory|64|memory.flat|1|256M|60|
msr|64|msr.flat|1|256M|60|
pmu|64|pmu.flat|1|256M|60|
vmware_backdoors|64|vmware_backdoors.flat|1|256M|60|
realmode|64|realmode.flat|1|256M|60|
s3|64|s3.flat|1|256M|60|
setjmp|64|setjmp.flat|1|256M|60|
sieve|64|sieve.flat|1|256M|180|
syscall|64|syscall.flat|1|256M|60|
tsc|64|tsc.flat|1|256M|60|
tsc_adjust|64|tsc_adjust.flat|1|256M|60|
xsave|64|xsave.flat|1|256M|60|
rmap_chain|64|rmap_chain.flat|1|256M|180|
svm|64|svm.flat|1|256M|60|
kvmclock_test|64|kvmclock_test.flat|2|256M|120|10000000 @NOW@
pcid|64|pcid.flat|1|256M|60|
rdpru|64|rdpru.flat|1|256M|60|
umip|64|umip.flat|1|256M|60|
la57|64|la57.flat|1|256M|60|
vmx|64|vmx.flat|1|256M|60|
debug|64|debug.flat|1|256M|60|
hyperv_synic|64|hyperv_synic.flat|2|256M|60|
hyperv_stimer|64|hyperv_stimer.flat|2|256M|60|
hyperv_clock|64|hyperv_clock.flat|2|256M|60|
tsx-ctrl|64|tsx-ctrl.flat|1|256M|60|
cet|64|cet.flat|2|256M|60|
lam|64|lam.flat|1|256M|60|
cmpxchg8b|32|cmpxchg8b.flat|1|256M|60|
taskswitch|32|taskswitch.flat|1|256M|60|
taskswitch2|32|taskswitch2.flat|1|256M|60|
LIST
)

pass=0; fail=0; skip=0; timeouts=0; missing=0
printf '%-22s %-8s %s\n' TEST RESULT NOTE
while IFS='|' read -r name tree image cpus mem limit args; do
  [ -n "$name" ] || continue
  if [ -n "$only" ] && ! [[ "$name" =~ $only ]]; then continue; fi
  dir="$kut"
  if [ "$tree" = 32 ]; then
    [ -n "$kut32" ] || continue
    dir="$kut32"
  fi
  flat="$dir/x86/$image"
  if [ ! -f "$flat" ]; then
    printf '%-22s %-8s %s\n' "$name" SKIP "$image not built"; missing=$((missing + 1)); skip=$((skip + 1)); continue
  fi
  args="${args//@NOW@/$(date +%s)}"
  log="$logs/$name.log"
  limit=$((limit * scale))
  if [ "$maxlimit" -gt 0 ] && [ "$limit" -gt "$maxlimit" ]; then limit=$maxlimit; fi
  # shellcheck disable=SC2086 # RINGVISOR may be a command with arguments
  timeout --kill-after=5 "$limit" $ringvisor run --engine "$engine" --kernel "$flat" --debug-exit --cpus "$cpus" \
    -m "$mem" --append "$args" </dev/null >"$log" 2>&1
  status=$?
  summary="$(grep -a '^SUMMARY:' "$log" | tail -1 | cut -c1-70)"
  case $status in
    1) result=PASS; pass=$((pass + 1)) ;;
    77) result=SKIP; skip=$((skip + 1)); summary="${summary:-$(grep -a -m1 '^SKIP' "$log" | cut -c1-70)}" ;;
    124|137) result=FAIL; fail=$((fail + 1)); timeouts=$((timeouts + 1)); summary="timeout after ${limit}s; last: $(tail -1 "$log" | tr -d '\r' | cut -c1-50)" ;;
    3) result=FAIL; fail=$((fail + 1)); summary="$summary $(grep -a -m1 '^FAIL' "$log" | cut -c1-60)" ;;
    *) result=FAIL; fail=$((fail + 1)); summary="exit status $status; last: $(tail -1 "$log" | tr -d '\r' | cut -c1-50)" ;;
  esac
  printf '%-22s %-8s %s\n' "$name" "$result" "$summary"
done <<<"$tests"

echo
echo "engine $engine: $pass passed, $fail failed ($timeouts timed out), $skip skipped; logs in $logs"
[ "$fail" -eq 0 ]
