#!/usr/bin/env bash
# tests/slurm/local-slurm.sh: a real single-node Slurm on this machine, for the tests.
#
#   local-slurm.sh start DIR [CPUS]   munged, slurmctld and slurmd with every file (keys,
#                                     sockets, state, logs, slurm.conf) under DIR (munge's
#                                     in a folder of /tmp linked as DIR/munge), on free
#                                     ports, the node this machine's short hostname with
#                                     CPUS CPUs (default: its cores); returns once the node
#                                     is idle; prints "export SLURM_CONF=DIR/slurm.conf"
#   local-slurm.sh stop DIR           cancels every job, stops the daemons by their pids
#   local-slurm.sh logs DIR           the last lines of the daemons' logs
#
# Needs root (Slurm runs as root here: SlurmUser=root) and Debian's slurm-wlm and munge;
# no systemd. Where a daemon does not start, start exits 1 with its log lines and stops
# what it had started: the tests fail, they do not skip.
set -uo pipefail

die() { echo "local-slurm: error: $*" >&2; exit 1; }

LOG_LINES=40

logs() { # dir
    local f
    for f in "$1"/munge/munged.log "$1"/slurmctld.log "$1"/slurmd.log "$1"/*.out; do
        [ -s "$f" ] || continue
        echo "---- $f (last $LOG_LINES lines)"
        tail -n "$LOG_LINES" "$f"
    done
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# The pid a daemon was started with (DIR/pids: one "name pid" line each).
pid_of() { awk -v n="$2" '$1 == n { print $2 }' "$1/pids" 2>/dev/null | tail -n 1; }

stop() { # dir
    local dir=$1 name pid n
    [ -f "$dir/pids" ] || return 0
    # jobs first: their slurmstepd processes outlive slurmd
    if alive "$(pid_of "$dir" slurmctld)" && [ -f "$dir/slurm.conf" ]; then
        SLURM_CONF=$dir/slurm.conf scancel --full --user="$(id -un)" 2>/dev/null
        for ((n = 0; n < 100; n++)); do
            SLURM_CONF=$dir/slurm.conf squeue -h -o %i 2>/dev/null | grep -q . || break
            sleep 0.2
        done
    fi
    for name in slurmd slurmctld munged; do
        pid=$(pid_of "$dir" "$name")
        alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for name in slurmd slurmctld munged; do
        pid=$(pid_of "$dir" "$name")
        for ((n = 0; n < 100 && $(alive "$pid" && echo 1 || echo 0); n++)); do sleep 0.1; done
        alive "$pid" && { kill -KILL "$pid" 2>/dev/null; echo "local-slurm: $name ($pid) killed" >&2; }
    done
    rm -f "$dir/pids"
    # the munge folder in /tmp (DIR/munge links to it)
    local munge_dir
    munge_dir=$(readlink "$dir/munge" 2>/dev/null)
    [[ $munge_dir == /tmp/amlfs-munge.* ]] && rm -rf "$munge_dir"
    rm -f "$dir/munge"
    return 0
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fail_start() { # dir message
    echo "local-slurm: error: $2" >&2
    logs "$1" >&2
    stop "$1"
    exit 1
}

start() { # dir cpus
    local dir=$1 cpus=$2 tool
    [[ $cpus =~ ^[1-9][0-9]*$ ]] || die "CPUS '$cpus': expected a positive integer"
    [ "$(id -u)" = 0 ] || die "needs root (slurmd runs jobs as their user; SlurmUser=root)"
    for tool in munged mungekey munge unmunge slurmctld slurmd sinfo squeue scancel setpriv python3; do
        command -v "$tool" >/dev/null || die "$tool: not found (make deps installs slurm-wlm and munge)"
    done
    id munge >/dev/null 2>&1 || die "no user 'munge' (make deps installs munge)"
    mkdir -p "$dir" || die "$dir: cannot create"
    dir=$(realpath "$dir")
    [ -f "$dir/pids" ] && alive "$(pid_of "$dir" slurmctld)" && die "$dir: a Slurm runs there already"
    rm -f "$dir/pids"
    trap 'fail_start "$dir" "interrupted"' INT TERM HUP
    local host mem_mb
    host=$(hostname -s)
    mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)

    # ---- munge: its own key, socket and log, in a folder of /tmp linked as DIR/munge:
    # munged runs as munge, which must reach it (DIR may be private to root)
    local munge_dir
    munge_dir=$(mktemp -d /tmp/amlfs-munge.XXXXXX) || die "mktemp failed"
    chown munge:munge "$munge_dir" && chmod 755 "$munge_dir" || die "$munge_dir: cannot chown to munge"
    rm -rf "$dir/munge" && ln -s "$munge_dir" "$dir/munge"
    local sock=$munge_dir/munge.socket
    setpriv --reuid=munge --regid=munge --init-groups \
        mungekey --create --keyfile="$munge_dir/munge.key" 2>"$dir/mungekey.out" ||
        fail_start "$dir" "mungekey --create failed: $(cat "$dir/mungekey.out")"
    setpriv --reuid=munge --regid=munge --init-groups \
        munged --foreground --socket="$sock" --key-file="$munge_dir/munge.key" \
        --pid-file="$munge_dir/munged.pid" --log-file="$munge_dir/munged.log" \
        --seed-file="$munge_dir/munged.seed" >"$dir/munged.out" 2>&1 &
    echo "munged $!" >> "$dir/pids"
    local n
    for ((n = 0; n < 100; n++)); do
        munge -n -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 && break
        alive "$(pid_of "$dir" munged)" || fail_start "$dir" "munged exited at start"
        sleep 0.1
    done
    [ "$n" -lt 100 ] || fail_start "$dir" "munged does not answer on $sock"

    # ---- slurm.conf
    local ctld_port slurmd_port
    ctld_port=$(free_port) && slurmd_port=$(free_port) || fail_start "$dir" "no free port"
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
    mkdir -p "$dir/state" "$dir/spool"
    cat > "$dir/slurm.conf" <<CONF
# a single-node Slurm for the amlfs tests (tests/slurm/local-slurm.sh)
ClusterName=amlfstest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=2
MinJobAge=600
InactiveLimit=0
Waittime=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$dir/slurm.conf

    # ---- the daemons, in the foreground of background processes: their pids are ours
    slurmctld -D -f "$SLURM_CONF" >"$dir/slurmctld.out" 2>&1 &
    echo "slurmctld $!" >> "$dir/pids"
    for ((n = 0; n < 100; n++)); do
        scontrol ping 2>/dev/null | grep -q UP && break
        alive "$(pid_of "$dir" slurmctld)" || fail_start "$dir" "slurmctld exited at start"
        sleep 0.1
    done
    [ "$n" -lt 100 ] || fail_start "$dir" "slurmctld does not answer on port $ctld_port"
    slurmd -D -f "$SLURM_CONF" -N "$host" >"$dir/slurmd.out" 2>&1 &
    echo "slurmd $!" >> "$dir/pids"
    local state=""
    for ((n = 0; n < 300; n++)); do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null)
        [ "$state" = idle ] && break
        alive "$(pid_of "$dir" slurmd)" || fail_start "$dir" "slurmd exited at start"
        alive "$(pid_of "$dir" slurmctld)" || fail_start "$dir" "slurmctld exited"
        sleep 0.1
    done
    [ "$state" = idle ] || fail_start "$dir" "node $host is '$state', not idle, after 30 s"
    trap - INT TERM HUP
    echo "export SLURM_CONF=$SLURM_CONF"
}

case ${1:-} in
    start) [ $# -ge 2 ] || die "usage: local-slurm.sh start DIR [CPUS]"; start "$2" "${3:-$(nproc)}" ;;
    stop) [ $# -eq 2 ] || die "usage: local-slurm.sh stop DIR"; stop "$(realpath -m "$2")" ;;
    logs) [ $# -eq 2 ] || die "usage: local-slurm.sh logs DIR"; logs "$(realpath -m "$2")" ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = --help ] ;;
esac
