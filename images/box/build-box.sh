#!/bin/bash
# Build the lpmlab frame box: a BIOS-bootable Debian 12 qcow2 for vagrant-libvirt, made
# without loop devices, mounts or a VM:
#   mmdebstrap (directory, root mode; customize.sh configures it)
#   -> mke2fs -d writes the root file system straight into the disk file at partition 2
#   -> a FAT partition 1 made with mtools holds syslinux (its mtools installer), kernel, initrd
#   -> sfdisk writes the MBR partition table, syslinux's mbr.bin the boot code
#   -> qemu-img convert -c -> box.img; tar with metadata.json and the box's Vagrantfile.
# Output: OUT/NAME.box and OUT/NAME.box.sha256 (sha256sum format). `make box` runs this.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: build-box.sh --key PUB --out DIR [options]   (as root)
  --key PUB                  OpenSSH public key baked into /home/vagrant/.ssh/authorized_keys
  --out DIR                  where NAME.box and NAME.box.sha256 go (created if missing)
  --size-gib N               virtual disk size in GiB (default 20; sparse)
  --mirror URL               Debian mirror (default http://deb.debian.org/debian)
  --security-mirror URL      default: MIRROR-security when MIRROR ends in /debian,
                             else http://deb.debian.org/debian-security
  --backports-packages LIST  packages to pre-install from bookworm-backports (space/comma list)
  --packages LIST            packages to pre-install from bookworm
  --disable-units LIST       systemd units to disable after installing
  --name NAME                box file name without .box (default lpmlab-debian12)
EOF
}
die() { echo "build-box: $*" >&2; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ARGS="$*"
KEY="" OUT="" SIZE_GIB=20 MIRROR=http://deb.debian.org/debian SECURITY_MIRROR=""
BPO_PACKAGES="" PACKAGES="" DISABLE_UNITS="" NAME=lpmlab-debian12
while [ $# -gt 0 ]; do
  case $1 in
    --key) KEY=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --size-gib) SIZE_GIB=${2:?}; shift 2 ;;
    --mirror) MIRROR=${2:?}; shift 2 ;;
    --security-mirror) SECURITY_MIRROR=${2:?}; shift 2 ;;
    --backports-packages) BPO_PACKAGES=${2//,/ }; shift 2 ;;
    --packages) PACKAGES=${2//,/ }; shift 2 ;;
    --disable-units) DISABLE_UNITS=${2//,/ }; shift 2 ;;
    --name) NAME=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ -n "$KEY" ] && [ -n "$OUT" ] || { usage >&2; die "--key and --out are required"; }
[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap --mode=root builds the chroot). Fix: sudo $0 $ARGS"
[[ $SIZE_GIB =~ ^[0-9]+$ ]] && [ "$SIZE_GIB" -ge 4 ] || die "--size-gib must be a whole number >= 4"
[ -r "$KEY" ] && grep -qE '^(ssh-|ecdsa-)' "$KEY" \
  || die "$KEY is not a readable OpenSSH public key. Fix: python -m lpmlab.fabric.box ensure-key DIR"
KEY=$(realpath "$KEY")
MIRROR=${MIRROR%/}
if [ -z "$SECURITY_MIRROR" ]; then
  case $MIRROR in
    */debian) SECURITY_MIRROR=$MIRROR-security ;;
    *) SECURITY_MIRROR=http://deb.debian.org/debian-security ;;
  esac
fi

# Build tools -> Debian package (all in bookworm main; `make box` installs them).
missing=()
for pair in mmdebstrap:mmdebstrap mke2fs:e2fsprogs mkfs.fat:dosfstools mcopy:mtools \
            syslinux:syslinux sfdisk:fdisk qemu-img:qemu-utils; do
  PATH=$PATH:/usr/sbin:/sbin command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
MBR=/usr/lib/syslinux/mbr/mbr.bin
[ -r "$MBR" ] || missing+=(syslinux-common)
[ ${#missing[@]} -eq 0 ] || die "missing build tools. Fix: apt-get install --no-install-recommends ${missing[*]}"
export PATH=$PATH:/usr/sbin:/sbin

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d "$OUT/.build-box.XXXXXX")
step="preparing"
trap 'rc=$?; [ $rc -eq 0 ] || echo "build-box: failed while $step (exit $rc); nothing was written to $OUT" >&2; rm -rf "$W"' EXIT
ROOT=$W/root
SECTOR=512
BOOT_START=2048                      # 1 MiB
BOOT_SECTORS=$((256 * 2048))         # 256 MiB FAT32: syslinux, kernel, initrd
ROOT_START=$((BOOT_START + BOOT_SECTORS))
DISK_SECTORS=$((SIZE_GIB * 1024 * 2048))
ROOT_SECTORS=$((DISK_SECTORS - ROOT_START))
# What the box is made from, for /etc/lpmlab-box (a changed recipe means a new box).
recipe=$( { cat "$HERE/build-box.sh" "$HERE/customize.sh" "$HERE/syslinux.cfg" "$HERE/Vagrantfile.box"
            find "$HERE/rootfs" -type f -print0 | LC_ALL=C sort -z | xargs -0 cat
            echo "$MIRROR|$SIZE_GIB|$BPO_PACKAGES|$PACKAGES|$DISABLE_UNITS"; } | sha256sum | cut -c1-16)

export BOX_SRC=$HERE BOX_KEY=$KEY BOX_MIRROR=$MIRROR BOX_BOOT_OUT=$W
export BOX_BPO_PACKAGES=$BPO_PACKAGES BOX_PACKAGES=$PACKAGES BOX_DISABLE_UNITS=$DISABLE_UNITS
export BOX_INFO="recipe=$recipe built=$(date -u +%Y-%m-%dT%H:%M:%SZ) key=$(ssh-keygen -lf "$KEY" 2>/dev/null | cut -d' ' -f2 || echo unknown)"
export BOX_CUSTOMIZE=$HERE/customize.sh

t0=$(date +%s)
step="building the Debian root file system (mmdebstrap)"
echo "build-box: $step; recipe $recipe"
mmdebstrap --mode=root --format=directory --variant=minbase \
  --include=systemd-sysv,udev,dbus,linux-image-amd64,initramfs-tools,systemd-resolved,openssh-server,sudo,python3,python3-apt,iproute2,iputils-ping,ca-certificates,less,procps,kmod \
  --components=main \
  --customize-hook='"$BOX_CUSTOMIZE" "$1"' \
  bookworm "$ROOT" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
  "deb $SECURITY_MIRROR bookworm-security main"
t1=$(date +%s)
echo "build-box: mmdebstrap $((t1 - t0)) s; root file system $(du -sh "$ROOT" | cut -f1)"

step="assembling the disk image"
DISK=$W/disk.raw
truncate -s $((DISK_SECTORS * SECTOR)) "$DISK"
mke2fs -q -t ext4 -L root -d "$ROOT" -E offset=$((ROOT_START * SECTOR)) "$DISK" \
  $((ROOT_SECTORS * SECTOR / 1024))k
truncate -s $((BOOT_SECTORS * SECTOR)) "$W/boot.fat"
mkfs.fat -F 32 -n BOOT "$W/boot.fat" >/dev/null
for f in "$W/vmlinuz" "$W/initrd.img" "$HERE/syslinux.cfg"; do
  mcopy -i "$W/boot.fat" "$f" "::/$(basename "$f")"
done
syslinux --install "$W/boot.fat"
dd if="$W/boot.fat" of="$DISK" bs=$SECTOR seek=$BOOT_START conv=notrunc,sparse status=none
sfdisk -q "$DISK" <<PT
label: dos
unit: sectors
start=$BOOT_START, size=$BOOT_SECTORS, type=c, bootable
start=$ROOT_START, size=$ROOT_SECTORS, type=83
PT
dd if="$MBR" of="$DISK" bs=440 count=1 conv=notrunc status=none
t2=$(date +%s)
echo "build-box: disk $((t2 - t1)) s"

step="compressing the disk (qemu-img convert -c)"
mkdir "$W/box"
qemu-img convert -f raw -O qcow2 -c "$DISK" "$W/box/box.img"
rm -f "$DISK"
t3=$(date +%s)
echo "build-box: qcow2 $((t3 - t2)) s; $(du -h "$W/box/box.img" | cut -f1)"

step="packing the box"
# vagrant-libvirt box format v1; virtual_size in whole GiB (fog-libvirt dislikes fractions).
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$SIZE_GIB" \
  >"$W/box/metadata.json"
cp "$HERE/Vagrantfile.box" "$W/box/Vagrantfile"
# A plain tar: box.img is compressed already, and vagrant's bsdtar reads either.
tar -C "$W/box" -cf "$W/$NAME.box" metadata.json Vagrantfile box.img
(cd "$W" && sha256sum "$NAME.box" >"$NAME.box.sha256")
mv -f "$W/$NAME.box" "$OUT/$NAME.box"
mv -f "$W/$NAME.box.sha256" "$OUT/$NAME.box.sha256"
t4=$(date +%s)
step="done"
echo "build-box: $OUT/$NAME.box $(du -h "$OUT/$NAME.box" | cut -f1) in $((t4 - t0)) s ($BOX_INFO)"
