#!/bin/sh
# Boots systemd as PID 1 of the PID + mount namespaces `unshare` made, with the project's units
# and nothing of the machine's own configuration. Usage: boot.sh WORK BINDIR TARGET
#
# Read ../../shared/reference/systemd-testing.md: a systemd booted on the machine's own /tmp
# empties it. Everything systemd or the units under test could write is made private first.
# PID 1 logs to the (private) journal, not to /dev/console, which is the machine's.
set -eu
work=$1 bin=$2 target=$3

mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs /run
# The test's folder and the binaries may live under the machine's /tmp (a clone there), which the
# private /tmp below hides: reach them through /run from here on.
mkdir -p /run/sedlock-test/work /run/sedlock-test/bin
mount --bind "$work" /run/sedlock-test/work
mount --bind "$bin" /run/sedlock-test/bin
work=/run/sedlock-test/work bin=/run/sedlock-test/bin
mount -t tmpfs -o mode=1777 tmpfs /tmp
[ -d /var/log/journal ] && mount -t tmpfs tmpfs /var/log/journal
mount -t tmpfs tmpfs /var/tmp
# /var/lib privately (systemd's own state, StateDirectory=), with the test's sedlock state in it.
mount -t tmpfs tmpfs /var/lib
mkdir -p /var/lib/sedlock && chmod 0700 /var/lib/sedlock && mount --bind "$work/state" /var/lib/sedlock
# /etc through an overlay: the test's /etc/sedlock and a group file with `sedlock`, nothing written below.
mkdir -p "$work/etc-upper" "$work/etc-work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/etc-upper,workdir=$work/etc-work" /etc
# The binaries where the units expect them.
mount -t tmpfs tmpfs /usr/local/bin
for tool in sedlock sedlockd sedsim; do
    touch "/usr/local/bin/$tool" && mount --bind "$bin/$tool" "/usr/local/bin/$tool"
done
# The simulated array and key server, at the paths their state names.
mkdir -p /run/sedsim-array /run/sedsim-kmip
mount --bind "$work/array" /run/sedsim-array
[ -d "$work/kmip" ] && mount --bind "$work/kmip" /run/sedsim-kmip

mkdir -p /run/systemd/system /run/systemd/system.control /run/systemd/system-generators
# The units under test go to the highest-priority path too, so units installed on the machine
# (/etc/systemd/system) cannot shadow them.
cp -r "$work/units/"* /run/systemd/system.control/
# No generator runs (fstab, getty, cryptsetup …) and nothing the standard targets pull in
# starts (tmpfiles, sysctl, udev, timers …) but journald: masks in the highest-priority unit path.
for generator in /lib/systemd/system-generators/* /usr/lib/systemd/system-generators/* /etc/systemd/system-generators/*; do
    [ -e "$generator" ] && ln -sf /dev/null "/run/systemd/system-generators/$(basename "$generator")"
done
for wants in /lib/systemd/system/*.wants /usr/lib/systemd/system/*.wants /etc/systemd/system/*.wants; do
    [ -d "$wants" ] || continue
    for unit in "$wants"/*; do
        name=$(basename "$unit")
        case "$name" in systemd-journald.service|systemd-journald.socket|systemd-journald-dev-log.socket) ;;
            *) ln -sf /dev/null "/run/systemd/system.control/$name" ;;
        esac
    done
done
for name in systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service systemd-sysctl.service \
            systemd-udevd.service systemd-udev-trigger.service systemd-random-seed.service systemd-remount-fs.service \
            systemd-sysusers.service systemd-update-utmp.service systemd-journal-flush.service systemd-firstboot.service \
            systemd-machine-id-commit.service systemd-modules-load.service systemd-binfmt.service systemd-journald-audit.socket; do
    ln -sf /dev/null "/run/systemd/system.control/$name"
done
# Shared again within these namespaces only (the rprivate above cut every tie to the machine's):
# systemd, told it runs in a container, leaves propagation as it finds it, and the credentials
# of LoadCredential*= are mounted in a helper's namespace and moved into /run/credentials, which
# the unit sees only through propagation.
mount --make-rshared /
exec env container=sedlock-test /lib/systemd/systemd --system --unit="$target" --log-target=journal --log-level=notice
