# Shared by the scripts in tests/slurm/ (sourced, not run). A single-node Slurm cluster for the
# tests: munge, slurmctld and slurmd on this machine, every file of theirs under $STATE.

STATE=${STILTS_SLURM_DIR:-/tmp/stilts-slurm}
SLURM_CONF=$STATE/slurm.conf
export SLURM_CONF

log() { echo "tests/slurm: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# The pid in a pid file, if that process is alive.
live_pid() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Stops the daemon of pid file $1 (SIGTERM, then SIGKILL after 15 s).
stop_pidfile() {
    local pid i
    pid=$(live_pid "$1") || {
        rm -f "$1"
        return 0
    }
    kill "$pid" 2>/dev/null || true
    for i in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$1: pid $pid did not stop on SIGTERM; killing it"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

# Starts slurmctld unless it runs; its state (queued and running jobs) survives a restart.
# `start_ctld -c` starts it with a clear state.
start_ctld() {
    if live_pid "$STATE/slurmctld.pid" >/dev/null; then
        return 0
    fi
    /usr/sbin/slurmctld -f "$SLURM_CONF" "$@" ||
        die "slurmctld did not start; see $STATE/slurmctld.log: $(tail -5 "$STATE/slurmctld.log" 2>/dev/null)"
    wait_for "slurmctld to answer" 60 scontrol ping
}

stop_ctld() {
    stop_pidfile "$STATE/slurmctld.pid"
}

# Runs "$@" until it succeeds quietly, at most $2 seconds.
wait_for() {
    local what=$1 secs=$2 i
    shift 2
    for i in $(seq $((secs * 5))); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    die "timed out after ${secs}s waiting for $what"
}
