#!/usr/bin/env bash
# Stops the test cluster started by start.sh: slurmd, slurmctld and (if start.sh started it)
# munged. Jobs still running are killed with slurmd. Pass --purge to delete its state directory.
set -euo pipefail
. "$(dirname "$0")/common.sh"
if live_pid "$STATE/slurmctld.pid" >/dev/null; then
    scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
fi
stop_pidfile "$STATE/slurmd.pid"
stop_ctld
if [ -f "$STATE/munged.started" ]; then
    stop_pidfile /run/munge/munged.pid
    rm -f "$STATE/munged.started"
fi
if [ "${1:-}" = "--purge" ]; then
    rm -rf "$STATE"
fi
log "stopped"
