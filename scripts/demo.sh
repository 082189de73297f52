#!/usr/bin/env bash
# demo.sh — set up, build e4box, and serve a small ext4 image read-only
# over FUSE: build an image from testdata/sample with mkfs.ext4 -d, mount
# it with `e4box mount -o ro`, look around with ordinary tools, use the
# offline subcommands, then unmount and wait for the server to exit.
#
# Needs root (or a user allowed to use /dev/fuse and fusermount3).
set -euo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() {
	say "$*"
	"$@"
}
die() {
	echo "demo.sh: $*" >&2
	exit 1
}

scripts/setup.sh

echo "demo.sh: building bin/e4box"
if ! go build -o bin/e4box ./cmd/e4box; then
	die "go build ./cmd/e4box failed (see the errors above); nothing to demo yet"
fi
E4BOX=$ROOT/bin/e4box

WORK=$(mktemp -d /tmp/e4box-demo.XXXXXX)
IMG=$WORK/sample.img
MNT=$WORK/mnt
SRC=$WORK/src
LOG=$WORK/server.log
mkdir "$MNT"

server_pid=""
cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" 2>/dev/null || umount -l "$MNT" || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# Copy the sample so the xattr set below does not touch the checkout.
cp -a testdata/sample "$SRC"
if setfattr -n user.comment -v "set by demo.sh" "$SRC/hello.txt" 2>/dev/null; then
	echo "demo.sh: set user.comment on hello.txt"
else
	echo "demo.sh: cannot set xattrs in $WORK; the image will have none" >&2
fi

run mkfs.ext4 -q -F -b 4096 -U e4b0c0de-0000-4000-8000-00000000de70 \
	-E hash_seed=e4b0c0de-0000-4000-8000-00000000de71 -L e4box-demo \
	-d "$SRC" "$IMG" 16M

run "$E4BOX" mount -o ro,debug --log "$LOG" "$IMG" "$MNT"
# The mount is live when `e4box mount` returns; the server runs on in the
# background. Find its pid (the foreground child serving $MNT) to wait for
# it after unmounting.
server_pid=$(pgrep -n -f -- "e4box .*$MNT" || true)
mountpoint -q "$MNT" || die "$MNT is not mounted after e4box mount returned"
run grep -F "$MNT" /proc/mounts

run ls -la "$MNT"
run find "$MNT"
run cat "$MNT/hello.txt"
run cat "$MNT/link-to-todo"
run stat "$MNT/hello.txt"
run stat "$MNT/link-to-hello"
if command -v getfattr >/dev/null; then
	run getfattr -d -m - "$MNT/hello.txt"
fi
run df -h "$MNT"

run "$E4BOX" info "$IMG"
run "$E4BOX" ls "$IMG" /
run "$E4BOX" stat "$IMG" /docs/notes/todo.txt
run "$E4BOX" cat "$IMG" /docs/guide.md

say "fusermount3 -u $MNT"
fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT"
if [[ -n $server_pid ]]; then
	for _ in $(seq 100); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$server_pid" 2>/dev/null; then
		die "server (pid $server_pid) still running 10s after unmount"
	fi
	echo "server (pid $server_pid) exited"
fi

say "head $LOG   (-o debug: a line per FUSE request and reply)"
head -n 15 "$LOG" || true
echo
echo "demo.sh: done"
