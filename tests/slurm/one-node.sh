#!/usr/bin/env bash
# A one-node Slurm cluster for tests/e2e/slurm.rs, from Debian's slurm-wlm
# and munge, as root: `one-node.sh start DIR` writes DIR/slurm.conf, starts
# munged (unless running), slurmctld and slurmd, and waits until the node is
# idle; `one-node.sh stop DIR` stops the two Slurm daemons it started.
set -euo pipefail
cmd=$1 dir=$2
conf=$dir/slurm.conf
case $cmd in
start)
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  host=$(hostname -s)
  base=$((7000 + ($$ % 500) * 2))
  cat >"$conf" <<CONF
ClusterName=emutest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$base
SlurmdPort=$((base + 1))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=emu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if [ ! -s /etc/munge/munge.key ]; then
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
      chown munge:munge /etc/munge/munge.key
      chmod 400 /etc/munge/munge.key
    fi
    su -s /bin/sh munge -c munged || munged --force
  fi
  SLURM_CONF=$conf slurmctld -f "$conf"
  SLURM_CONF=$conf slurmd -f "$conf"
  for _ in $(seq 1 60); do
    if SLURM_CONF=$conf sinfo -h -o %t 2>/dev/null | grep -qx idle; then
      exit 0
    fi
    sleep 0.5
  done
  echo "the Slurm node did not come up:" >&2
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  exit 1
  ;;
stop)
  for d in slurmd slurmctld; do
    if [ -s "$dir/$d.pid" ]; then
      kill "$(cat "$dir/$d.pid")" 2>/dev/null || true
    fi
  done
  ;;
esac
