#!/usr/bin/env bash
# test.sh — THE test command: everything CI runs, in order.
#
#   1. scripts/setup.sh          install the Debian packages tests need
#   2. go vet ./...
#   3. go test ./...             unit and end-to-end tests (root, FUSE, loop)
#   4. go test -race -short      core packages under the race detector
#   5. fuzz                      every Fuzz target in the repo, briefly
#
# Runs every step even after a failure, then exits non-zero if any failed.
# As root with CI=true (as in CI), tests that would otherwise skip for a
# missing requirement fail instead. Tunables: FUZZTIME (default 10s per
# target), TEST_TIMEOUT (default 60m), SKIP_FUZZ=1, SKIP_RACE=1.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

FUZZTIME=${FUZZTIME:-10s}
TEST_TIMEOUT=${TEST_TIMEOUT:-60m}
failed=()

step() {
	local name=$1
	shift
	local start=$SECONDS
	echo "=== test.sh: $name: $*"
	if "$@"; then
		echo "=== test.sh: $name: ok ($((SECONDS - start))s)"
	else
		echo "=== test.sh: $name: FAILED ($((SECONDS - start))s)"
		failed+=("$name")
	fi
}

# fuzz_targets prints "package target" for every fuzz target, listing all
# packages in one go test invocation: each package's names come before
# its "ok <package>" line.
fuzz_targets() {
	go test -list '^Fuzz' ./... | awk '
		/^Fuzz/ { names[n++] = $1; next }
		/^ok[ \t]/ { for (i = 0; i < n; i++) print $2, names[i]; n = 0; next }
		/^(\?|FAIL|---)/ { n = 0 }
	'
}

# fuzz_one runs one target for FUZZTIME. Go 1.26's fuzz coordinator can
# fail a target with a bare "context deadline exceeded" when -fuzztime
# expires while a worker is mid-call (go.dev/issue/75804, fixed in Go
# 1.27); it writes no input and nothing was found. Only that exact outcome
# is retried, at most twice; any other failure (a crasher, a hang, a
# t.Fatal: all of which write "Failing input written to") fails at once.
fuzz_one() {
	local pkg=$1 name=$2 attempt out rc
	for attempt in 1 2 3; do
		echo "--- fuzz $pkg $name ($FUZZTIME, attempt $attempt)"
		out=$(go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1)
		rc=$?
		printf '%s\n' "$out"
		[[ $rc -eq 0 ]] && return 0
		if grep -q 'Failing input written to' <<<"$out" ||
			! grep -q '^    context deadline exceeded$' <<<"$out"; then
			return 1
		fi
		echo "test.sh: $name: fuzz coordinator deadline race (go.dev/issue/75804), no input found; retrying"
	done
	return 1
}

run_fuzz() {
	local list pkg name rc=0 count=0
	if ! list=$(fuzz_targets); then
		echo "test.sh: listing fuzz targets failed" >&2
		return 1
	fi
	while read -r pkg name; do
		[[ -n $pkg ]] || continue
		count=$((count + 1))
		# One target per invocation: go test -fuzz accepts only one.
		fuzz_one "$pkg" "$name" || rc=1
	done <<<"$list"
	echo "test.sh: ran $count fuzz targets"
	return $rc
}

run_race() {
	local pkgs=() d
	for d in fuse ext4 server bcache; do
		[[ -d $d ]] && pkgs+=("./$d/...")
	done
	if [[ ${#pkgs[@]} -eq 0 ]]; then
		echo "test.sh: no core packages for the race run yet"
		return 0
	fi
	# -short: packages may skip their slowest end-to-end cases here; they
	# ran in full in the plain test step.
	go test -race -short -timeout "$TEST_TIMEOUT" "${pkgs[@]}"
}

step setup scripts/setup.sh
step vet go vet ./...
step test go test -timeout "$TEST_TIMEOUT" ./...
if [[ ${SKIP_RACE:-} != 1 ]]; then
	step race run_race
fi
if [[ ${SKIP_FUZZ:-} != 1 ]]; then
	step fuzz run_fuzz
fi

if [[ ${#failed[@]} -gt 0 ]]; then
	echo "test.sh: FAILED steps: ${failed[*]}"
	exit 1
fi
echo "test.sh: all steps passed"
