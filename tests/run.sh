#!/bin/sh
# Run each test binary given; report and fail if any failed.
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
