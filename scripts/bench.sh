#!/usr/bin/env bash
# bench.sh — throughput of e4box (classic FUSE path) against the kernel's own
# ext4 on the same kind of image, printed as a table. Speed targets are
# checked here, never by timed assertions in tests.
#
#   scripts/bench.sh [SIZE_MB]     (default 256; run as root)
#
# Each workload runs on a fresh image: sequential write (dd, fsync at the
# end), sequential read with a cold page cache, and creating then listing and
# removing 2,000 small files.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mb=${1:-256}
work=$(mktemp -d /tmp/e4box-bench.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
	mountpoint -q "$mnt" && umount "$mnt" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o bin/e4box ./cmd/e4box

# seconds COMMAND...: wall-clock seconds the command took.
seconds() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

fresh_image() {
	rm -f "$work/img"
	truncate -s $((size_mb * 4 + 512))M "$work/img"
	mkfs.ext4 -q -F "$work/img"
}

mount_fs() { # kind
	case $1 in
	kernel) mount -o loop "$work/img" "$mnt" ;;
	e4box) bin/e4box mount -o rw "$work/img" "$mnt" ;;
	esac
}

unmount_fs() { # kind
	umount "$mnt"
	# e4box: wait for the background server to finish writing and exit.
	while pgrep -f "e4box mount.*$work/img" >/dev/null; do sleep 0.1; done
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

small_files() {
	mkdir "$mnt/small"
	for i in $(seq 1 2000); do echo "file $i" >"$mnt/small/f$i"; done
	ls -l "$mnt/small" >/dev/null
	rm -rf "$mnt/small"
}

declare -A result
for kind in kernel e4box; do
	fresh_image
	mount_fs $kind
	result[$kind,write]=$(seconds dd if=/dev/zero of="$mnt/big" bs=1M count="$size_mb" conv=fsync)
	unmount_fs $kind
	drop_caches
	mount_fs $kind
	result[$kind,read]=$(seconds dd if="$mnt/big" of=/dev/null bs=1M)
	result[$kind,small]=$(seconds small_files)
	unmount_fs $kind
	e2fsck -fn "$work/img" >/dev/null 2>&1 || echo "warning: e2fsck found problems after the $kind run" >&2
done

mbps() { echo "scale=1; $size_mb / $1" | bc -l; }
printf '%-28s %12s %12s %8s\n' workload kernel e4box ratio
printf '%-28s %12s %12s %8s\n' "seq write ${size_mb} MiB (MB/s)" \
	"$(mbps "${result[kernel,write]}")" "$(mbps "${result[e4box,write]}")" \
	"$(echo "scale=2; ${result[kernel,write]} / ${result[e4box,write]}" | bc -l)"
printf '%-28s %12s %12s %8s\n' "seq read ${size_mb} MiB (MB/s)" \
	"$(mbps "${result[kernel,read]}")" "$(mbps "${result[e4box,read]}")" \
	"$(echo "scale=2; ${result[kernel,read]} / ${result[e4box,read]}" | bc -l)"
printf '%-28s %12.2f %12.2f %8s\n' "2000 small files (s)" \
	"${result[kernel,small]}" "${result[e4box,small]}" \
	"$(echo "scale=2; ${result[kernel,small]} / ${result[e4box,small]}" | bc -l)"
