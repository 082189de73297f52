#!/usr/bin/env bash
# setup.sh — install the Debian packages e4box's tests and demo need.
#
# Idempotent: it asks dpkg what is already installed, runs `apt-get update`
# only when something is missing, and is a no-op when everything is present.
# Must run as root (CI does); as another user it uses sudo when available.
set -euo pipefail

# package:why — keep the reason next to the name so the list stays honest.
required=(
	"e2fsprogs:mkfs.ext4 -d, e2fsck -fn and debugfs build and check test images"
	"fuse3:fusermount3 unmounts FUSE mounts as a non-root user and in the demo"
	"attr:getfattr/setfattr show and set xattrs in the demo and manual checks"
	"acl:getfacl/setfacl show and set POSIX ACLs in the demo and manual checks"
	"util-linux:losetup, mount and umount drive the kernel's ext4 oracle"
)
# Optional packages: installed when available, never fatal when not.
optional=(
	"fio:I/O benchmarks (scripts print a table; tests do not need it)"
)

is_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing_from() {
	local entry name
	for entry in "$@"; do
		name=${entry%%:*}
		is_installed "$name" || printf '%s\n' "$name"
	done
}

# Root is needed only to change something; sudo stands in when present.
SUDO=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
fi

# Loop devices and /dev/fuse are needed by the end-to-end tests; load the
# modules when they are not built in (harmless when already present).
if [[ ! -e /dev/fuse ]]; then
	"${SUDO[@]}" modprobe fuse 2>/dev/null || echo "setup.sh: /dev/fuse missing and modprobe fuse failed" >&2
fi
if [[ ! -e /dev/loop-control ]]; then
	"${SUDO[@]}" modprobe loop 2>/dev/null || echo "setup.sh: /dev/loop-control missing and modprobe loop failed" >&2
fi

mapfile -t need < <(missing_from "${required[@]}")
mapfile -t want < <(missing_from "${optional[@]}")

if [[ ${#need[@]} -eq 0 && ${#want[@]} -eq 0 ]]; then
	echo "setup.sh: all packages present"
	exit 0
fi

if [[ $(id -u) -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
	echo "setup.sh: missing ${need[*]} ${want[*]}; run as root to install" >&2
	[[ ${#need[@]} -eq 0 ]] # only optional ones missing: not a failure
	exit
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup.sh: installing: ${need[*]} ${want[*]}"
"${SUDO[@]}" apt-get update -qq
if [[ ${#need[@]} -gt 0 ]]; then
	"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [[ ${#want[@]} -gt 0 ]]; then
	# Optional: report and carry on if the archive does not have it.
	"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${want[@]}" ||
		echo "setup.sh: optional packages not installed: ${want[*]}" >&2
fi

echo "setup.sh: done"
