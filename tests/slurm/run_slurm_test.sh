#!/usr/bin/env bash
# Real-cluster test of the SLURM profile: a single-node SLURM cluster on this machine (munged,
# MariaDB, slurmdbd, slurmctld, slurmd, all private to $AKB_SLURM_WORK), then the reduced workflow
# (tests/slurm/small_config.yaml) run twice in fresh directories: locally, and with
# `--workflow-profile profiles/slurm`. Passes when both runs succeed, every job the SLURM run sent
# to the cluster is in SLURM's accounting (sacct) as COMPLETED under its rule, exactly the model
# jobs were submitted (no bookkeeping rule), no job without a GPU ran in the GPU partition, and
# results/ and resources/ of the two runs are byte-identical. The daemons are stopped at the end.
#
#   sudo bash tests/slurm/run_slurm_test.sh       (Debian/Ubuntu, root: installs packages with apt)
#
# Environment: AKB_SLURM_WORK (cluster state, logs and both runs; default /tmp/akb-slurm, wiped at
# start), AKB_SLURM_PYTHON (default .venv/bin/python), AKB_SLURM_CONFIG (default
# tests/slurm/small_config.yaml), AKB_SLURM_PORT_BASE (first of 4 TCP ports, default 16817),
# AKB_SLURM_KEEP=1 (leave the cluster running; stop it with `AKB_SLURM_STOP=1 bash ...`).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/tests/slurm"
WORK=${AKB_SLURM_WORK:-/tmp/akb-slurm}
PYTHON=${AKB_SLURM_PYTHON:-$ROOT/.venv/bin/python}
CONFIG=${AKB_SLURM_CONFIG:-$HERE/small_config.yaml}
PORT_BASE=${AKB_SLURM_PORT_BASE:-16817}
CTLD_PORT=$PORT_BASE SLURMD_PORT=$((PORT_BASE + 1)) DBD_PORT=$((PORT_BASE + 2)) MYSQL_PORT=$((PORT_BASE + 3))
CLUSTER=akbtest
ACCOUNT=akbtest
# The rules whose jobs small_config.yaml sends to the cluster; every other rule is a localrule.
CLUSTER_RULES=generate_synthetic,caption_benchmark,cascade_model,probe_model
CPU_PARTITION=cpu  # the cluster's default partition, where the config's partitions.cpu: null sends jobs
PACKAGES=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server)

export HF_HUB_OFFLINE=1 SLURM_CONF="$WORK/etc/slurm.conf" PATH="$PATH:/usr/sbin:/sbin"
APT_LOG=/tmp/akb-slurm-apt.log
# Where SLURM's commands look for the configuration when SLURM_CONF is unset. The job steps need
# it: the slurm-jobstep executor strips SLURM_* variables (SLURM_CONF included) before its `srun`.
ETC_CONF=/etc/slurm/slurm.conf

STEP="start" STEP_T0=$(date +%s) T0=$(date +%s)
TIMINGS=()

log() { printf '%s\n' "$@"; }
step() {
    step_done
    STEP=$1 STEP_T0=$(date +%s)
    printf '\n==> %s\n' "$STEP"
}
step_done() {
    [ "$STEP" = start ] || TIMINGS+=("$(printf '%-56s %5ss' "$STEP" $(($(date +%s) - STEP_T0)))")
    STEP=start
}
show_log() {  # the last lines of a log file, if it exists
    [ -s "$1" ] && { log "--- last lines of $1:"; tail -n "${2:-25}" "$1"; } || true
}
fail() {
    trap - ERR
    log "" "FAILED at step '$STEP': $*" >&2
    if [ "$BASH_SUBSHELL" -gt 0 ]; then kill -USR1 $$; exit 1; fi  # failed inside $(...)
    for f in "$WORK"/log/*.log; do show_log "$f" 15; done >&2
    exit 1
}
trap 'fail "command failed (line $LINENO, exit $?): $BASH_COMMAND"' ERR
trap 'trap - ERR; exit 1' USR1
trap 'fail "interrupted"' INT TERM

# Stop the daemons this script started (pid files under $WORK), newest first.
pid_of() { [ -s "$1" ] && cat "$1" 2>/dev/null || true; }
stop_pid() {  # name pidfile
    local pid
    pid=$(pid_of "$2")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && { log "$1 ($pid) did not stop, killing"; kill -9 "$pid" 2>/dev/null || true; }
        log "stopped $1 ($pid)"
    fi
    rm -f "$2"
}
stop_cluster() {
    stop_pid slurmd "$WORK/run/slurmd.pid"
    stop_pid slurmctld "$WORK/run/slurmctld.pid"
    stop_pid slurmdbd "$WORK/run/slurmdbd.pid"
    stop_pid mariadbd "$WORK/run/mariadbd.pid"
    stop_pid munged "$WORK/run/munged.pid"
    if [ "$(readlink "$ETC_CONF" 2>/dev/null)" = "$SLURM_CONF" ]; then
        rm -f "$ETC_CONF" && log "removed $ETC_CONF"
    fi
}
on_exit() {
    local rc=$?
    trap - ERR
    step_done
    if [ "${AKB_SLURM_KEEP:-0}" = 1 ] && [ $rc = 0 ]; then
        log "" "cluster left running (AKB_SLURM_KEEP=1; its configuration: $SLURM_CONF);" \
            "stop it with: AKB_SLURM_STOP=1 bash $0"
    elif [ -d "$WORK/run" ]; then
        step "stop the cluster"
        stop_cluster
        step_done
    fi
    if [ $rc = 0 ]; then
        log "" "==> timings"
        printf '  %s\n' "${TIMINGS[@]}"
        log "  $(printf '%-56s %5ss' total $(($(date +%s) - T0)))" "" "PASSED: SLURM cluster test"
    fi
}

wait_for() {  # seconds description command...: poll until the command succeeds
    local limit=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not ready after ${limit}s"
        sleep 0.5
    done
}

if [ "${AKB_SLURM_STOP:-0}" = 1 ]; then
    stop_cluster
    exit 0
fi
trap on_exit EXIT

# --------------------------------------------------------------------------------------------
step "preflight"
[ "$(id -u)" = 0 ] || fail "run as root (sudo bash $0): it installs packages and starts daemons"
[ -x "$PYTHON" ] || fail "$PYTHON not found: create the venv first (bash .ci/setup-venv) or set AKB_SLURM_PYTHON"
# find_spec, not import: importing the plugin runs `scontrol show config`, which waits on a cluster.
"$PYTHON" -c 'import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, sys.argv[1:])))' \
    snakemake snakemake_executor_plugin_slurm snakemake_executor_plugin_slurm_jobstep \
    || fail "$PYTHON lacks snakemake or the slurm executor plugins"
[ -f "$CONFIG" ] || fail "$CONFIG not found"
[ "$(nproc)" -ge 2 ] || fail "the test needs 2 CPUs (one model job of the small config uses 2 threads)"
# The GPU partition as the workflow names it (the config's partitions.gpu); CPU jobs go to the default.
GPU_PARTITION=$("$PYTHON" -c 'import sys; from akb.config import load_config_file
print(load_config_file(sys.argv[1])["partitions"]["gpu"])' "$CONFIG") || fail "cannot read $CONFIG"
[ "$GPU_PARTITION" != "$CPU_PARTITION" ] || fail "partitions.gpu of $CONFIG is the default partition's name"
if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    [ "$(readlink "$ETC_CONF" 2>/dev/null)" = "$SLURM_CONF" ] \
        || fail "$ETC_CONF exists: this machine has a SLURM configuration of its own; run the test on a machine without one"
fi
log "repository $ROOT; python $PYTHON; config $CONFIG" "partitions '$CPU_PARTITION' (default), '$GPU_PARTITION'"

# --------------------------------------------------------------------------------------------
step "install packages (apt)"
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} = 0 ]; then
    log "already installed: ${PACKAGES[*]}"
else
    command -v apt-get >/dev/null || fail "apt-get not found: install ${missing[*]} by hand (Debian/Ubuntu packages)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$APT_LOG" 2>&1 || { cat "$APT_LOG"; fail "apt-get update"; }
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1 \
        || { tail -30 "$APT_LOG"; fail "apt-get install ${missing[*]}"; }
    rm -f "$APT_LOG"
fi
for bin in munged mungekey mariadb-install-db mariadbd slurmdbd slurmctld slurmd sbatch sacct sacctmgr sinfo; do
    command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || fail "$bin not found after the install"
done
log "versions: $(dpkg-query -W -f='${Package} ${Version}, ' "${PACKAGES[@]}")"

# --------------------------------------------------------------------------------------------
step "configure the cluster in $WORK"
stop_cluster  # leftovers of an earlier run that was killed or kept
case "$WORK" in /|/tmp|/var|/home|/root|"$ROOT") fail "AKB_SLURM_WORK=$WORK: refusing to wipe it";; esac
rm -rf "$WORK"
mkdir -p "$WORK"/{etc,run,log,state,spool,munge,mysql}
chmod 755 "$WORK"
for port in $CTLD_PORT $SLURMD_PORT $DBD_PORT $MYSQL_PORT; do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
        fail "TCP port $port is in use: set AKB_SLURM_PORT_BASE to a free range of 4 ports"
    fi
done
HOST=$(hostname -s)
# The node as slurmd sees it (CPUs, sockets, cores, memory), e.g.
# NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
NODE=$(slurmd -C | head -1)
case "$NODE" in "NodeName=$HOST "*) ;; *) fail "slurmd -C gave '$NODE', expected NodeName=$HOST";; esac
for f in slurm.conf slurmdbd.conf; do
    sed -e "s|@WORK@|$WORK|g" -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@HOST@|$HOST|g" -e "s|@NODE@|$NODE|g" \
        -e "s|@CPU_PARTITION@|$CPU_PARTITION|g" -e "s|@GPU_PARTITION@|$GPU_PARTITION|g" \
        -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
        -e "s|@DBD_PORT@|$DBD_PORT|g" -e "s|@MYSQL_PORT@|$MYSQL_PORT|g" "$HERE/$f.in" >"$WORK/etc/$f"
done
chmod 600 "$WORK/etc/slurmdbd.conf"  # slurmdbd refuses a readable one (it holds the DB password)
mkdir -p "$(dirname "$ETC_CONF")"
ln -sfn "$SLURM_CONF" "$ETC_CONF"  # removed when the cluster stops
log "node: $NODE; partitions $CPU_PARTITION (default), $GPU_PARTITION; SLURM_CONF=$SLURM_CONF (linked from $ETC_CONF)"

# --------------------------------------------------------------------------------------------
step "start munged"
mungekey --create --keyfile="$WORK/munge/munge.key" 2>/dev/null \
    || dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$WORK/munge"
chmod 711 "$WORK/munge"  # clients (slurm daemons, job steps) reach the socket, not the key
chmod 400 "$WORK/munge/munge.key"
runuser -u munge -- munged --socket="$WORK/munge/munge.socket" --key-file="$WORK/munge/munge.key" \
    --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/munge/munged.log" \
    --seed-file="$WORK/munge/munged.seed" || { show_log "$WORK/munge/munged.log"; fail "munged did not start"; }
wait_for 10 "munged pid file" test -s "$WORK/munge/munged.pid"
cp "$WORK/munge/munged.pid" "$WORK/run/munged.pid"
munge -S "$WORK/munge/munge.socket" -n | unmunge -S "$WORK/munge/munge.socket" >/dev/null \
    || fail "munge round trip failed"
log "munged: credentials round-trip"

# --------------------------------------------------------------------------------------------
step "start MariaDB (private instance)"
chown mysql:mysql "$WORK/mysql"
mariadb-install-db --no-defaults --user=mysql --datadir="$WORK/mysql/data" --skip-test-db \
    --auth-root-authentication-method=socket >"$WORK/log/mariadb-install.log" 2>&1 \
    || { show_log "$WORK/log/mariadb-install.log"; fail "mariadb-install-db"; }
touch "$WORK/log/mariadb.log" && chown mysql:mysql "$WORK/log/mariadb.log"
setsid mariadbd --no-defaults --user=mysql --datadir="$WORK/mysql/data" --socket="$WORK/mysql/mysqld.sock" \
    --pid-file="$WORK/mysql/mariadbd.pid" --port="$MYSQL_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
    --log-error="$WORK/log/mariadb.log" --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 --skip-log-bin \
    </dev/null >/dev/null 2>&1 &
SQL=(mariadb --no-defaults --socket="$WORK/mysql/mysqld.sock" -u root)
wait_for 60 "MariaDB" "${SQL[@]}" -e "SELECT 1"
cp "$WORK/mysql/mariadbd.pid" "$WORK/run/mariadbd.pid"
"${SQL[@]}" -e "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'akb-slurm-test';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
log "MariaDB on 127.0.0.1:$MYSQL_PORT, database slurm_acct_db for user slurm"

# --------------------------------------------------------------------------------------------
step "start slurmdbd, register cluster and account"
slurmdbd || fail "slurmdbd did not start"
wait_for 60 "slurmdbd" sacctmgr -n list cluster
sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="SLURM test" Organization=akb >/dev/null
sacctmgr -i add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
log "cluster $CLUSTER, account $ACCOUNT, user root"

# --------------------------------------------------------------------------------------------
step "start slurmctld and slurmd, wait for the node"
slurmctld || fail "slurmctld did not start"
wait_for 30 "slurmctld" scontrol ping
slurmd || fail "slurmd did not start"
node_idle() { [ "$(sinfo -h -n "$HOST" -o %t)" = idle ]; }
wait_for 60 "node $HOST idle" node_idle
sinfo
sbatch_out=$(sbatch --parsable -p "$CPU_PARTITION" -J smoke -o /dev/null --wrap "srun true") \
    || fail "sbatch of a smoke job"
wait_for 60 "smoke job $sbatch_out" bash -c "sacct -n -X -j $sbatch_out -o State | grep -q COMPLETED"
log "smoke job $sbatch_out COMPLETED (sbatch + srun + accounting work)"

# --------------------------------------------------------------------------------------------
SNAKEMAKE=("$PYTHON" -m snakemake --snakefile "$ROOT/Snakefile" --configfile "$CONFIG")
cd "$ROOT"

step "run the workflow locally (--cores 2)"
if ! "${SNAKEMAKE[@]}" --cores 2 --directory "$WORK/local" >"$WORK/log/run-local.log" 2>&1; then
    show_log "$WORK/log/run-local.log" 40
    fail "the local run failed (log: $WORK/log/run-local.log)"
fi
log "$(grep -c '^Finished jobid' "$WORK/log/run-local.log") jobs done; log: $WORK/log/run-local.log"

step "run the workflow with --workflow-profile profiles/slurm"
# The profile as shipped; only the first status check comes sooner than the plugin's 40 s.
if ! "${SNAKEMAKE[@]}" --workflow-profile "$ROOT/profiles/slurm" --directory "$WORK/slurm" \
    --slurm-init-seconds-before-status-checks 5 >"$WORK/log/run-slurm.log" 2>&1; then
    show_log "$WORK/log/run-slurm.log" 40
    fail "the SLURM run failed (log: $WORK/log/run-slurm.log; job logs: $WORK/slurm/.snakemake/slurm_logs)"
fi
log "$(grep -c '^Finished jobid' "$WORK/log/run-slurm.log") jobs done; log: $WORK/log/run-slurm.log"

# --------------------------------------------------------------------------------------------
step "check: the cluster jobs in sacct"
# Jobs and their steps; the smoke job left out. (The database is new: no other jobs are in it.)
sacct -a -P -n --starttime=now-1days \
    --format=JobID,JobName,State,ExitCode,Comment,Partition,NodeList,Elapsed,ReqMem,Timelimit,AllocCPUS \
    | grep -v "^$sbatch_out[|.]" >"$WORK/log/sacct.txt" || true
"$PYTHON" "$HERE/check_slurm_run.py" jobs "$WORK/log/run-slurm.log" "$WORK/log/sacct.txt" \
    --cluster-rules "$CLUSTER_RULES" --gpu-partition "$GPU_PARTITION" --default-partition "$CPU_PARTITION" \
    || fail "the SLURM run's jobs do not match SLURM's accounting ($WORK/log/sacct.txt)"

step "check: local and SLURM results are identical"
"$PYTHON" "$HERE/check_slurm_run.py" same "$WORK/local" "$WORK/slurm" \
    || fail "the two runs' outputs differ ($WORK/local, $WORK/slurm)"
