#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm tests (test/slurm/): everything it writes lives in one
# folder the caller names (made with mktemp -d), and the daemons it starts are the only processes it stops.
#
#   scripts/slurm/test-cluster.sh start DIR   installs Debian's slurm-wlm and munge when missing (apt-get update
#                                             first; needs root, as CI runs), writes DIR/slurm.conf (this host,
#                                             2 CPUs at most, free ports, no accounting database), starts munged,
#                                             slurmctld and slurmd as root, waits for the node to be idle, and
#                                             prints SLURM_CONF=DIR/slurm.conf (clients find the cluster by it).
#   scripts/slurm/test-cluster.sh stop DIR    cancels the cluster's jobs, waits for them to end, stops the three
#                                             daemons it started (by the pid files in DIR).
#
# Why this shape: ProctrackType=proctrack/linuxproc and TaskPlugin=task/none need no cgroups (containers often
# have none to give); AccountingStorageType=accounting_storage/none needs no slurmdbd and database, and MinJobAge
# is large so `scontrol show job` still knows a job's end state (what sacct would tell) for the whole test run.
# munged gets its own key and socket in DIR (slurm.conf's AuthInfo names the socket), so a system munged, if any,
# is never touched and two clusters can run side by side.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
dir="$(cd "$dir" && pwd)"

log() { echo "test-cluster: $*" >&2; }

ensure_packages() {
  local missing=()
  for bin in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch; do [ -x "$bin" ] || { missing+=(slurm-wlm); break; }; done
  [ -x /usr/sbin/munged ] || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != "0" ]; then
    log "ERROR: ${missing[*]} missing and not root: run as root, or apt-get install ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]} (apt-get update && apt-get install)"
  local aptlog
  aptlog="$(mktemp -t adapter-lab-slurm-apt-XXXXXX.log)"
  if { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
    rm -f "$aptlog"
  else
    log "ERROR: apt-get failed (log: $aptlog):"
    tail -n 20 "$aptlog" >&2
    exit 1
  fi
}

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
  done
  log "ERROR: no free port found"
  exit 1
}

start() {
  ensure_packages
  if [ "$(id -u)" != "0" ]; then
    log "ERROR: the test cluster's daemons run as root (SlurmUser=root)"
    exit 1
  fi
  local host cpus mem ctld_port d_port
  host="$(hostname -s)"
  cpus="$(nproc)"
  [ "$cpus" -gt 2 ] && cpus=2
  # Memory slurmd will find on this machine (a node configured with more is drained), in MiB, less a margin.
  mem=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  ctld_port="$(free_port)"
  d_port="$(free_port)"
  while [ "$d_port" = "$ctld_port" ]; do d_port="$(free_port)"; done
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
  chmod 700 "$dir/munge"

  head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  /usr/sbin/munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

  cat >"$dir/slurm.conf" <<CONF
# A one-node test cluster written by scripts/slurm/test-cluster.sh
ClusterName=adapterlab
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
MinJobAge=86400
KillWait=30
ReturnToService=2
SchedulerParameters=sched_interval=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  /usr/sbin/slurmctld -f "$SLURM_CONF"
  /usr/sbin/slurmd -f "$SLURM_CONF"
  for _ in $(seq 1 60); do
    if [ "$(sinfo -h -N -o '%t' 2>/dev/null | head -n 1)" = "idle" ]; then
      echo "SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.5
  done
  log "ERROR: the node did not become idle; sinfo says: $(sinfo -N 2>&1 | tail -n 2)"
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  stop
  exit 1
}

stop_pid_file() {
  local file="$1" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true
}

stop() {
  export SLURM_CONF="$dir/slurm.conf"
  if [ -f "$SLURM_CONF" ] && [ -f "$dir/slurmctld.pid" ]; then
    scancel --full --quiet --user=root 2>/dev/null || true
    # Jobs end within KillWait (30 s) of the cancel; wait for them so no job's processes outlive the cluster.
    for _ in $(seq 1 80); do
      [ -z "$(squeue -h -t R,CG,CF,S -o %i 2>/dev/null || true)" ] && break
      sleep 0.5
    done
  fi
  stop_pid_file "$dir/slurmd.pid"
  stop_pid_file "$dir/slurmctld.pid"
  stop_pid_file "$dir/munge/munged.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
