#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the tests and for trying sweeps.
#
#   slurm/cluster.sh install   apt packages (root): slurm-wlm, slurmdbd, munge, mariadb-server,
#                              and chromium (the test suite's browser, for `report html`)
#   slurm/cluster.sh start     start every daemon; prints `export SLURM_CONF=...`
#   slurm/cluster.sh stop      stop the daemons this script started (by their recorded PIDs)
#   slurm/cluster.sh status    say which of them run
#
# Everything lives in $WSOLBENCH_SLURM_DIR (default /tmp/wsolbench-slurm): configs,
# a private munge key, a MariaDB data folder for accounting (submitit
# reads job states from sacct), logs and PID files. Ports are off the defaults,
# so a SLURM already on the machine is left alone. Daemons need root.
set -euo pipefail

STATE=${WSOLBENCH_SLURM_DIR:-/tmp/wsolbench-slurm}
DAEMONS=(mariadb munged slurmdbd slurmctld slurmd)
DB_PORT=13306
DBD_PORT=16819
CTLD_PORT=16817
SLURMD_PORT=16818

die() { echo "cluster.sh: $*" >&2; exit 1; }

install_packages() {
    if command -v sbatch >/dev/null && command -v slurmdbd >/dev/null \
        && command -v munged >/dev/null && command -v mariadbd >/dev/null \
        && command -v chromium >/dev/null; then
        return
    fi
    local sudo=() ours=0
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    # policy-rc.d exiting 101 stops the packages from starting their own services.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        "${sudo[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d' \
            && "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d && ours=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        slurm-wlm slurmdbd munge mariadb-server chromium >/dev/null
    [ "$ours" = 1 ] && "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
    return 0
}

# MariaDB and munged run as their own users, so their files sit in folders they own.
pidfile() {
    case $1 in
        mariadb) echo "$STATE/mysql/mariadb.pid" ;;
        munged) echo "$STATE/munge/munged.pid" ;;
        *) echo "$STATE/$1.pid" ;;
    esac
}

alive() { [ -f "$(pidfile "$1")" ] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...
    local limit=$1 what=$2
    shift 2
    for _ in $(seq $((limit * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "$what did not come up in ${limit}s (logs in $STATE/log)"
}

write_configs() {
    local host node
    host=$(hostname -s)
    # `slurmd -C` states this machine's CPUs and memory as a node line.
    node=$(slurmd -C | head -1)
    cat >"$STATE/slurm.conf" <<EOF
ClusterName=wsolbench
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobRequeue=1
SchedulerType=sched/builtin
# The main scheduling pass every 5 s, not 60: a requeued job (held cred_expire
# seconds) is otherwise picked up by that pass only, up to a minute later.
SchedulerParameters=sched_interval=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
InactiveLimit=0
KillWait=5
MinJobAge=60
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$STATE/slurmdbd.conf" <<EOF
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
AuthType=auth/munge
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=wsolbench
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
EOF
    chmod 600 "$STATE/slurmdbd.conf"
}

start_mariadb() {
    alive mariadb && return
    if [ ! -d "$STATE/mysql/mysql" ]; then
        mariadb-install-db --user=mysql --datadir="$STATE/mysql" --skip-test-db \
            >"$STATE/log/mariadb-install.log" 2>&1
    fi
    setsid mariadbd --user=mysql --datadir="$STATE/mysql" --socket="$STATE/mysql/mysql.sock" \
        --port=$DB_PORT --bind-address=127.0.0.1 --pid-file="$STATE/mysql/mariadb.pid" \
        --log-error="$STATE/mysql/mariadb.log" --skip-log-bin </dev/null >/dev/null 2>&1 &
    wait_for 30 MariaDB mariadb --socket="$STATE/mysql/mysql.sock" -e "SELECT 1"
    mariadb --socket="$STATE/mysql/mysql.sock" -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'wsolbench';
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'wsolbench';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_munged() {
    # SLURM 22.05's clients reach munged only on its default socket, so ours listens
    # there; a munged already answering on it is used as it is (and never stopped).
    alive munged && return
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
    [ -f "$STATE/munge/munge.key" ] || mungekey --create --keyfile="$STATE/munge/munge.key"
    chown munge:munge "$STATE/munge/munge.key" && chmod 600 "$STATE/munge/munge.key"
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    runuser -u munge -- munged --key-file="$STATE/munge/munge.key" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
        --seed-file="$STATE/munge/munged.seed"
    wait_for 10 munged sh -c "munge -n | unmunge"
}

start() {
    command -v slurmctld >/dev/null || die "SLURM is not installed; run: slurm/cluster.sh install"
    [ "$(id -u)" = 0 ] || die "the daemons need root"
    mkdir -p "$STATE"/{log,ctld,spool,munge,mysql}
    chmod 755 "$STATE"
    chown munge:munge "$STATE/munge" && chmod 711 "$STATE/munge"
    chown mysql:mysql "$STATE/mysql"
    write_configs
    export SLURM_CONF=$STATE/slurm.conf
    start_mariadb
    start_munged
    if ! alive slurmdbd; then
        slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
        wait_for 30 slurmdbd sacctmgr -n list cluster
    fi
    sacctmgr -i add cluster wsolbench >/dev/null 2>&1 || true
    alive slurmctld || slurmctld -f "$STATE/slurm.conf"
    alive slurmd || slurmd -f "$STATE/slurm.conf"
    wait_for 30 "the node" sh -c "sinfo -h -o %t | grep -qx idle"
    echo "export SLURM_CONF=$STATE/slurm.conf"
}

stop_together() {  # stop_together NAME...: signal them all, then wait (10 s) for each
    local name pid pids=()
    for name in "$@"; do
        alive "$name" || continue
        pid=$(cat "$(pidfile "$name")")
        kill "$pid" && pids+=("$pid:$name")
    done
    for entry in "${pids[@]}"; do
        pid=${entry%%:*} name=${entry#*:}
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        rm -f "$(pidfile "$name")"
    done
}

stop() {
    # Only PIDs this script recorded are signalled. SLURM's daemons go first, then the
    # accounting daemon they report to, then what it needs (the database, munge); each
    # tier stops in parallel, since each daemon takes a second or two.
    stop_together slurmd slurmctld
    stop_together slurmdbd
    stop_together munged mariadb
}

status() {
    for name in "${DAEMONS[@]}"; do
        if alive "$name"; then echo "$name: running (pid $(cat "$(pidfile "$name")"))"
        else echo "$name: stopped"; fi
    done
}

[ $# -ge 1 ] || die "usage: cluster.sh install|start|stop|status ..."
for verb in "$@"; do
    case $verb in
        install) install_packages ;;
        start) start ;;
        stop) stop ;;
        status) status ;;
        *) die "unknown command '$verb' (install, start, stop, status)" ;;
    esac
done
