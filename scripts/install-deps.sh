#!/bin/sh
# Installs the host packages Ringvisor's build, tests and benchmarks use, on a fresh Debian 12 (bookworm).
# Idempotent: installs only what is missing and runs `apt-get update` only when apt needs it.
#   cpio         - tests compare Ringvisor's initramfs writer with the reference cpio
#   e2fsprogs    - mkfs.ext4 -d builds ext4 disk images (DiskImage.CreateExt4)
#   xz-utils, zstd - decompress kernel modules if a kernel ships them compressed
#   gcc          - small host C helpers used by benchmarks
#   qemu-system-x86 - the baseline the benchmarks compare against
#   dpkg-dev is not needed: the image builder only uses apt-get download and dpkg-deb (both in apt/dpkg).
# busybox-static and the kernel are NOT installed: the guest image builder downloads them with
# `apt-get download` and unpacks them into its cache (see docs/guest-image.md).
set -eu

PACKAGES="cpio e2fsprogs xz-utils zstd gcc qemu-system-x86"

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "install-deps: must run as root (or with sudo available)" >&2
        exit 1
    fi
else
    SUDO=
fi

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

# The image builder needs apt's package lists to resolve linux-image-cloud-amd64, even when every tool is present.
need_update=0
if [ -n "$missing" ]; then
    need_update=1
elif ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
    need_update=1
fi

export DEBIAN_FRONTEND=noninteractive
if [ "$need_update" -eq 1 ]; then
    echo "install-deps: apt-get update"
    # Unreachable third-party sources make apt-get update exit non-zero although Debian's lists were fetched;
    # what matters is whether the packages resolve afterwards, which the install below checks.
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update || echo "install-deps: apt-get update reported errors; continuing" >&2
fi

if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends $missing
else
    echo "install-deps: all of $PACKAGES already installed"
fi
