#!/bin/sh
# Run each test binary given; report and fail if any failed.
# the decoded-cutout caches of the tests go to a scratch directory, not the user's ~/.cache/galnn
export GALNN_CACHE="${GALNN_CACHE:-${TMPDIR:-/tmp}/galnn-test-cache}"
failed=""
for t in "$@"; do
    echo "== $t"
    if ! "$t"; then failed="$failed $t"; fi
done
if [ -n "$failed" ]; then
    echo "FAILED:$failed"
    exit 1
fi
echo "all $# test programs passed"
