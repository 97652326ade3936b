#!/usr/bin/env bash
# Provides the guest node's kernel: a Debian linux-image-6.1 (apt-get download, never installed on the host), its
# modules with a modules.dep (depmod -b), and a small initramfs (busybox, the virtio/9p/overlay modules and the
# stage-1 init below). Cached once under ${NETTUNE_CACHE:-$HOME/.cache/nettune}/guest/KERNEL_VERSION.
# Prints that folder on its last line of stdout (vmlinuz, initramfs.gz, modules/lib/modules/KERNEL_VERSION).
set -euo pipefail

CACHE="${NETTUNE_CACHE:-$HOME/.cache/nettune}/guest"
log() { printf '[guest-kernel] %s\n' "$*" >&2; }

for tool in busybox cpio depmod; do
  command -v "$tool" >/dev/null || { log "$tool is missing: make deps installs busybox-static, cpio and kmod"; exit 1; }
done

# The newest 6.1 image of the configured Debian release; an existing cache answers without asking apt.
existing=$(find "$CACHE" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null | sort -V | tail -n1 || true)
if [[ -n $existing ]]; then echo "$existing"; exit 0; fi

package=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -n1)
if [[ -z $package ]]; then
  apt-get update -qq >&2
  package=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -n1)
fi
[[ -n $package ]] || { log "apt knows no linux-image-6.1.0-*-amd64 (a Debian 12 source is needed)"; exit 1; }
kver=${package#linux-image-}
out="$CACHE/$kver"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$CACHE"

log "downloading $package"
(cd "$work" && apt-get download -qq "$package" >&2)
log "extracting"
mkdir -p "$work/root"
dpkg-deb -x "$work"/linux-image-*.deb "$work/root"
# The package ships no modules.dep; busybox modprobe needs one (module order matters: virtio before virtio_ring users).
depmod -b "$work/root" "$kver"

mods="$work/root/lib/modules/$kver"
initrd="$work/initrd"
mkdir -p "$initrd"/{bin,dev,proc,sys,newroot,lib/modules/"$kver"}
cp "$(command -v busybox)" "$initrd/bin/busybox"
# busybox modprobe resolves dependencies from modules.dep: copy the four modules and everything they depend on.
needed=$(for m in virtio_pci 9pnet_virtio 9p overlay; do
  path=$(grep -E "/$m\.ko(\.xz)?:" "$mods/modules.dep" | head -n1)
  echo "${path%%:*}"; echo "${path#*:}" | tr ' ' '\n'
done | sed '/^$/d' | sort -u)
for rel in $needed; do
  mkdir -p "$initrd/lib/modules/$kver/$(dirname "$rel")"
  cp "$mods/$rel" "$initrd/lib/modules/$kver/$rel"
done
grep -E "^($(echo "$needed" | sed 's/[.]/\\./g' | paste -sd'|')):" "$mods/modules.dep" >"$initrd/lib/modules/$kver/modules.dep"
cat >"$initrd/init" <<'INIT'
#!/bin/busybox sh
# Stage 1: the host's / read-only over 9p, a tmpfs on top (writable, thrown away at power-off), then stage 2 from
# the node's folder on the host (nettune.init= on the kernel command line).
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe "$m"; done
mkdir -p /lower /upper
mount -t 9p -o trans=virtio,version=9p2000.L,cache=loose,msize=512000,ro hostroot /lower
mount -t tmpfs -o size=1g tmpfs /upper
mkdir -p /upper/up /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/up,workdir=/upper/work /newroot
stage2=$(sed -n 's/.*nettune\.init=\([^ ]*\).*/\1/p' /proc/cmdline)
umount /proc /sys /dev
exec switch_root /newroot /bin/bash "$stage2"
INIT
chmod +x "$initrd/init"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

rm -rf "$out.tmp"; mkdir -p "$out.tmp/modules/lib"
mv "$work/root/boot/vmlinuz-$kver" "$out.tmp/vmlinuz"
mv "$work/root/lib/modules" "$out.tmp/modules/lib/modules"
mv "$work/initramfs.gz" "$out.tmp/initramfs.gz"
touch "$out.tmp/.complete"
rm -rf "$out"; mv "$out.tmp" "$out"
log "kernel $kver ready in $out"
echo "$out"
