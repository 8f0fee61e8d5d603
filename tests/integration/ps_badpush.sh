#!/usr/bin/env bash
# ps_badpush.sh - bad pushes and pulls against the parameter server, from a
# C client acting as two workers (ps_probe): wrong size, unknown job, step
# out of range, rank out of range, wrong attempt are refused with the right
# status and change nothing; waits are bounded; bsp applies a step only
# when both ranks pushed it; duplicates are acknowledged. Numbers are
# checked: non-finite gradients and BN statistics, negative BN variances
# and inconsistent metrics are refused; a step whose update would
# overflow is skipped (an event says so) and training goes on with finite
# parameters. saturnd keeps serving afterwards.
. "$(dirname "$0")/ps_lib.sh"

start_saturnd "$T/state" --lease-ms 60000
spec_file "$T/spec.json" name=probe model=cnn-small dataset=synthetic workers=2 epochs=1 batch_size=64
"$PS_PROBE" "$SATURN_ADDR" "$SATURN_TOKEN_FILE" "$T/spec.json" >"$T/probe.txt" 2>&1
RC=$?
sed 's/^/# probe: /' "$T/probe.txt"
check "every probe check passed ($(tail -n 1 "$T/probe.txt"))" test $RC -eq 0
check "saturnd is alive" kill -0 "$SATURND_PID"
expect_exit 0 "saturnd still serves: cancel the probe's job" "$SATURN" cancel job-1
check "  ... and it is cancelled" jq_ok '.state == "cancelled"' "$SATURN" status job-1 --json
finish
