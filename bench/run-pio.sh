#!/bin/sh
# PIO-exit round-trip benchmark: the kvm engine's C# KVM_RUN loop vs bench/native/pio_loop.c (compiled with cc -O2).
# Extra arguments are passed through, e.g. --iterations 1000000 --rounds 3.
set -eu
cd "$(dirname "$0")/.."
exec dotnet run -c Release --project bench/Ringvisor.Bench -- pio "$@"
