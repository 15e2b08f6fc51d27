#!/usr/bin/env bash
# Stops, starts or restarts the controller (slurmctld) of the test cluster started by start.sh.
# Its state (queued and running jobs, the next job id) survives, unless `--clear` is given:
# then the controller forgets every job and reuses job ids, as one that lost its state
# directory does. The Slurm executor test uses both to take the controller away mid-run.
#
# `kill` ends it with SIGKILL (no shutdown, no final state save), as a crash does.
#
#     tests/slurm/ctld.sh stop|kill|start|restart [--clear]
set -euo pipefail
. "$(dirname "$0")/common.sh"
clear=()
if [ "${2:-}" = "--clear" ]; then
    clear=(-c)
fi
case "${1:-}" in
stop) stop_ctld ;;
kill)
    if pid=$(live_pid "$STATE/slurmctld.pid"); then
        kill -9 "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$STATE/slurmctld.pid"
    ;;
start) start_ctld "${clear[@]}" ;;
restart)
    stop_ctld
    start_ctld "${clear[@]}"
    ;;
*) die "usage: $0 stop|kill|start|restart [--clear]" ;;
esac
