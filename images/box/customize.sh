#!/bin/bash
# mmdebstrap --customize-hook of build-box.sh: turns the minbase chroot ROOT ($1) into the
# lpmlab frame box. Runs as root with /proc, /sys and /dev mounted in ROOT and mmdebstrap's
# policy-rc.d in place (no service starts). Settings come from build-box.sh's environment:
#   BOX_SRC            images/box (rootfs/ overlay)
#   BOX_KEY            the public key Vagrant and Ansible log in with (user vagrant)
#   BOX_MIRROR         the Debian mirror (bookworm-backports source written like host.yml's)
#   BOX_BPO_PACKAGES   packages installed from bookworm-backports (apt-get -t), may be empty
#   BOX_PACKAGES       packages installed from bookworm, may be empty
#   BOX_DISABLE_UNITS  units disabled again after installing (host.yml's host_system_units)
#   BOX_BOOT_OUT       folder the kernel and initrd are copied to (for the FAT boot partition)
#   BOX_INFO           text written to /etc/lpmlab-box (what the box was built from)
set -euo pipefail
ROOT=${1:?usage: customize.sh ROOT}
for var in BOX_SRC BOX_KEY BOX_MIRROR BOX_BOOT_OUT; do
  [ -n "${!var:-}" ] || { echo "customize.sh: $var is not set (run build-box.sh)" >&2; exit 2; }
done
in_root() { chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

# Static files (owned by root whoever owns the checkout; existing folders keep their modes).
tar -C "$BOX_SRC/rootfs" --owner=0 --group=0 -cf - . | tar -C "$ROOT" --no-overwrite-dir -xf -
chmod 0440 "$ROOT/etc/sudoers.d/vagrant"

# The same deb822 file host.yml writes (byte for byte with the default mirror), so host.yml
# run on a frame finds its source in place and adds no second one.
cat >"$ROOT/etc/apt/sources.list.d/bookworm-backports.sources" <<SRC
# Added by lpmlab (playbooks/host.yml): QEMU 10 and libvirt 11 for Debian 12.
Types: deb
URIs: $BOX_MIRROR
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

# What host.yml would install on a frame, installed once here instead of on every frame at
# every `vagrant up` (no recommends: they pull QEMU's GTK/SPICE/OpenGL modules into a
# headless VM; host.yml only checks that its listed packages are installed).
if [ -n "${BOX_BPO_PACKAGES:-}${BOX_PACKAGES:-}" ]; then
  # systemd-resolved's postinst pointed resolv.conf at its stub, which is not running here.
  rm -f "$ROOT/etc/resolv.conf"
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
  in_root apt-get update -q
  # shellcheck disable=SC2086 # word splitting of the package lists is wanted
  if [ -n "${BOX_BPO_PACKAGES:-}" ]; then
    in_root apt-get install -y -q --no-install-recommends -t bookworm-backports $BOX_BPO_PACKAGES
  fi
  # shellcheck disable=SC2086
  if [ -n "${BOX_PACKAGES:-}" ]; then
    in_root apt-get install -y -q --no-install-recommends $BOX_PACKAGES
  fi
  in_root apt-get clean
fi
# Package scripts enable units host.yml would disable again (the lab starts its own daemons).
for unit in ${BOX_DISABLE_UNITS:-}; do
  if [ -e "$ROOT/lib/systemd/system/$unit" ] || [ -e "$ROOT/usr/lib/systemd/system/$unit" ]; then
    in_root systemctl disable --quiet "$unit"
  fi
done

in_root systemctl enable systemd-networkd.service systemd-resolved.service \
  ssh-hostkeys.service serial-getty@ttyS0.service

# The login user Vagrant expects: vagrant, password-less sudo, the lab's key only.
in_root useradd --create-home --shell /bin/bash --groups sudo vagrant
install -d -m 0700 "$ROOT/home/vagrant/.ssh"
install -m 0600 "$BOX_KEY" "$ROOT/home/vagrant/.ssh/authorized_keys"
in_root chown -R vagrant:vagrant /home/vagrant/.ssh

# Nothing that must differ between clones: host keys are made at first boot, machine-id
# (and with it the DHCP DUID) by systemd at first boot.
rm -f "$ROOT"/etc/ssh/ssh_host_*
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
# The box resolves through systemd-resolved's stub (the build host's resolv.conf is not its).
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$ROOT/etc/resolv.conf"
printf '%s\n' "${BOX_INFO:-lpmlab box}" >"$ROOT/etc/lpmlab-box"

cp -L "$ROOT/vmlinuz" "$BOX_BOOT_OUT/vmlinuz"
cp -L "$ROOT/initrd.img" "$BOX_BOOT_OUT/initrd.img"
