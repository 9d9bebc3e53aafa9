#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for the integration tests (see README, Tests).
#
#   tests/slurm/local_cluster.sh up     install missing packages, start munged, mariadbd, slurmdbd,
#                                       slurmctld, slurmd (adopting live ones), wait until ready
#   tests/slurm/local_cluster.sh down   cancel jobs, stop only the daemons this script started
#   tests/slurm/local_cluster.sh check  exit 0 when the cluster answers (srun true)
#
# Needs root (apt-get, daemons). State (recorded PIDs, daemon output, apt log) lives in .slurm-ci/
# (git-ignored). Every wait is bounded. Environment: SLURM_CI_CPUS (CPUs to advertise, default 8),
# SLURM_CI_STATE (state folder). Facts behind each choice: ../shared/docs/slurm-ci.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE=${SLURM_CI_STATE:-$PWD/.slurm-ci}
PIDS=$STATE/pids
CPUS=${SLURM_CI_CPUS:-8}
PACKAGES=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)   # start order (down: the last three together, then the first two)

log() { echo "[slurm-ci] $*" >&2; }
die() { echo "[slurm-ci] error: $*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.2 s until COMMAND succeeds.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then die "$what not ready after ${limit}s (logs: $STATE/daemons.out, /var/log/slurm/)"; fi
    sleep 0.2
  done
}

# alive NAME: the recorded PID of NAME is running and is that daemon (checked via /proc/PID/comm).
alive() {
  local f=$PIDS/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

# foreign NAME PIDFILE: NAME is already running, started by someone else (not recorded by us):
# use it, never stop it.
foreign() {
  local pid
  [ -s "$2" ] || return 1
  pid=$(cat "$2")
  [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && ! alive "$1" \
    && log "adopting $1 ($pid), started outside this checkout: it will not be stopped by 'down'"
}

record() {  # record NAME PIDFILE: copy the daemon's own pidfile into our state (bounded wait).
  local deadline=$((SECONDS + 15))
  until [ -s "$2" ] && [ "$(cat "/proc/$(cat "$2")/comm" 2>/dev/null)" = "$1" ]; do
    ((SECONDS < deadline)) || die "$1 did not start (no live pid in $2; see $STATE/daemons.out)"
    sleep 0.1
  done
  cp "$2" "$PIDS/$1.pid"
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "packages missing (${missing[*]}) and no apt-get to install them"
  log "installing ${missing[*]} (apt log: $STATE/apt.log)"
  local own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # keep apt from starting the daemons itself
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"; } >"$STATE/apt.log" 2>&1 || rc=$?
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc); see $STATE/apt.log"
}

write_slurm_conf() {
  local real mem defmem
  real=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  [ -n "$real" ] || die "could not read RealMemory from 'slurmd -C'"
  mem=$((real * 9 / 10))
  defmem=$((mem / CPUS < 1024 ? mem / CPUS : 1024))
  install -d /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
  cat > /etc/slurm/slurm.conf.tmp <<EOF
# written by hdfm-bench tests/slurm/local_cluster.sh
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MailProg=/bin/true
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$defmem
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
KillWait=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
NodeName=localhost CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mv /etc/slurm/slurm.conf.tmp /etc/slurm/slurm.conf
}

start_munged() {
  alive munged || foreign munged /run/munge/munged.pid && return 0
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -f /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  fi
  runuser -u munge -- /usr/sbin/munged </dev/null >>"$STATE/daemons.out" 2>&1
  record munged /run/munge/munged.pid
  wait_for 10 munged bash -c 'munge -n | unmunge'
}

start_mariadbd() {
  alive mariadbd || foreign mariadbd /run/mysqld/mysqld.pid && return 0
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
    >>"$STATE/daemons.out" 2>&1
  rm -f /run/mysqld/mysqld.pid
  setsid /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
    --pid-file=/run/mysqld/mysqld.pid --skip-networking --innodb-buffer-pool-size=32M \
    --innodb-lock-wait-timeout=900 </dev/null >>"$STATE/daemons.out" 2>&1 &
  wait_for 60 mariadbd mariadb-admin --socket=/run/mysqld/mysqld.sock ping
  record mariadbd /run/mysqld/mysqld.pid
}

start_slurmdbd() {
  alive slurmdbd || foreign slurmdbd /run/slurmdbd.pid && return 0
  local pw
  pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  # Set the DB password only while slurmdbd is down (a running one keeps the password it started with).
  mariadb --socket=/run/mysqld/mysqld.sock -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pw';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pw'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
    FLUSH PRIVILEGES;"
  install -d /etc/slurm /var/log/slurm
  (umask 077; cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$pw
StorageLoc=slurm_acct_db
EOF
  )
  chmod 0600 /etc/slurm/slurmdbd.conf
  rm -f /run/slurmdbd.pid
  slurmdbd </dev/null >>"$STATE/daemons.out" 2>&1
  record slurmdbd /run/slurmdbd.pid
  wait_for 30 slurmdbd bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'
}

start_slurmctld() {
  write_slurm_conf
  if alive slurmctld || foreign slurmctld /run/slurmctld.pid; then scontrol reconfigure; return 0; fi
  rm -f /run/slurmctld.pid
  slurmctld </dev/null >>"$STATE/daemons.out" 2>&1
  record slurmctld /run/slurmctld.pid
  wait_for 30 slurmctld bash -c 'scontrol ping | grep -q UP'
}

node_ready() {
  local s
  s=$(sinfo -h -n localhost -o %T 2>/dev/null) || return 1
  [ -n "$s" ] && [[ "$s" != *'*' ]] && [[ ! "$s" =~ down|drain|fail|unknown ]]
}

start_slurmd() {
  if ! alive slurmd && ! foreign slurmd /run/slurmd.pid; then
    rm -f /run/slurmd.pid
    slurmd -N localhost </dev/null >>"$STATE/daemons.out" 2>&1
    record slurmd /run/slurmd.pid
  fi
  sleep 0.5
  local s; s=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
  if [[ "$s" =~ down|drain|fail ]]; then scontrol update nodename=localhost state=resume || true; fi
  wait_for 30 "slurmd (node localhost)" node_ready
}

up() {
  [ "$(id -u)" = 0 ] || die "must run as root (installs packages and starts daemons)"
  mkdir -p "$PIDS"
  local t0=$SECONDS
  install_packages
  start_munged; start_mariadbd; start_slurmdbd; start_slurmctld; start_slurmd
  wait_for 30 "accounting (cluster ci in slurmdbd)" bash -c \
    'sacctmgr -n -P list cluster format=cluster | grep -qx ci && sacct -n -X -S now'
  timeout 30 srun -N1 -n1 true || die "smoke test 'srun true' failed"
  log "cluster up in $((SECONDS - t0)) s ($CPUS CPUs advertised); jobs: sinfo / squeue / sacct"
}

down() {
  [ -d "$PIDS" ] || { log "nothing to stop (no $PIDS)"; return 0; }
  if alive slurmctld; then  # only a cluster we started: cancel its jobs first (slurmstepd outlives slurmd)
    scancel --user=root >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 30))
    while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && ((SECONDS < deadline)); do sleep 0.5; done
  fi
  # Each daemon takes ~2 s to exit: the Slurm daemons are stopped together, then the database and
  # munge (which they use while they shut down) together — 4 s, not 10 s one by one.
  stop_daemons slurmd slurmctld slurmdbd
  stop_daemons mariadbd munged
}

# stop_daemons NAME...: SIGTERM to each running daemon we started, then wait for all of them (SIGKILL
# after 30 s), and forget their PIDs.
stop_daemons() {
  local name pid pids=() names=()
  for name in "$@"; do
    if alive "$name"; then
      pid=$(cat "$PIDS/$name.pid")
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$name")
    else
      rm -f "$PIDS/$name.pid"
    fi
  done
  local i deadline=$((SECONDS + 30))
  for i in "${!pids[@]}"; do
    pid=${pids[i]}
    while [ -d "/proc/$pid" ] && ((SECONDS < deadline)); do sleep 0.2; done
    if [ -d "/proc/$pid" ]; then log "${names[i]} ($pid) ignored SIGTERM; sending SIGKILL"; kill -KILL "$pid" || true; fi
    log "stopped ${names[i]} ($pid)"
    rm -f "$PIDS/${names[i]}.pid"
  done
}

# scontrol ping answers at once when no controller runs (srun alone retries for ~9 s first)
check() { command -v srun >/dev/null && scontrol ping >/dev/null 2>&1 && timeout 20 srun -N1 -n1 true >/dev/null 2>&1; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  check) check ;;
  *) echo "usage: $0 up|down|check" >&2; exit 2 ;;
esac
