#!/usr/bin/env bash
# Run the test suite N times in a row while busy loops hold every core; exit non-zero if any round failed.
#
#   tests/stress.sh 5                      # 5 rounds of the README's command (without coverage)
#   tests/stress.sh 3 tests/test_watch.py  # extra arguments go to pytest
#
# This is how issue 11 checks that no test depends on the machine being quiet: the busy loops (one `yes` per
# core, like the "six busy processes on two cores" of the report) are killed when the script exits.
set -uo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-5}"
shift || true
[[ "$rounds" =~ ^[0-9]+$ ]] || { echo "usage: $0 ROUNDS [pytest args...]" >&2; exit 2; }

busy=()
suite=""
cleanup() {
    [ -z "$suite" ] || kill -- "$suite" 2>/dev/null
    [ ${#busy[@]} -eq 0 ] || kill "${busy[@]}" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq "$(nproc)"); do
    yes > /dev/null &
    busy+=($!)
done
echo "stress: ${#busy[@]} busy loops; load: $(cut -d' ' -f1-3 /proc/loadavg)"

failed=0
for round in $(seq "$rounds"); do
    start=$SECONDS
    python3 -m pytest -p no:apimon -n 2 -q -p no:cacheprovider "$@" > "/tmp/apimon-stress-$$-$round.log" 2>&1 &
    suite=$!
    if wait "$suite"; then
        verdict=passed
    else
        verdict=FAILED
        failed=$((failed + 1))
    fi
    suite=""
    echo "round $round/$rounds: $verdict in $((SECONDS - start)) s; $(tail -n 1 "/tmp/apimon-stress-$$-$round.log")"
    [ "$verdict" = passed ] && rm -f "/tmp/apimon-stress-$$-$round.log" \
        || grep -E '^(FAILED|ERROR) ' "/tmp/apimon-stress-$$-$round.log" | sed 's/^/    /'
done
echo "stress: $((rounds - failed))/$rounds rounds green"
[ "$failed" -eq 0 ]
