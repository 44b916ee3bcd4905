#!/usr/bin/env bash
# Rapid Data Locking at scale, run by scripts/bench: BIN (sedsim, sedlock) SEDLOCKD [APPLIANCES]
#  - boot storm: APPLIANCES small simulated appliances (2 drives each, AK on the key server, RDL on)
#    power-cycled at once, then every boot unlock started at once; time to all unlocked and KMIP
#    round trips per boot — against one simulated key server, then against PyKMIP's server;
#  - lock-on-loss reaction: sedlockd with a 1 s token interval; from the moment the appliance's
#    certificate is distrusted to every drive locked (the audit log's time of the lock).
set -euo pipefail
bin="$1" sedlockd="$2" count="${3:-50}"
sedsim="$bin/sedsim" sedlock="$bin/sedlock"
work="$(mktemp -d /tmp/sedlock-storm.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 300); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
now() { date +%s.%N; }
ms() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.0f", (e - s) * 1000 }'; }

# One CA for both servers: the simulated key server's. PyKMIP serves with its server certificate,
# so every appliance's client certificate (issued by that CA) is trusted by both.
kmip="$work/kmip"
"$sedsim" kmip init --dir "$kmip" >/dev/null
sim_port="$(free_port)"
setsid "$sedsim" kmip serve --dir "$kmip" --port "$sim_port" >/dev/null 2>&1 & pids+=($!)
py_port="$(free_port)"
mkdir -p "$work/pykmip/policies" && echo '{}' > "$work/pykmip/policies/empty.json"
cat > "$work/pykmip/server.conf" <<CONF
[server]
hostname=127.0.0.1
port=$py_port
certificate_path=$kmip/server.pem
key_path=$kmip/server.key
ca_path=$kmip/ca.pem
auth_suite=TLS1.2
policy_path=$work/pykmip/policies
enable_tls_client_auth=True
logging_level=WARNING
database_path=$work/pykmip/db.sqlite
CONF
setsid .venv/bin/pykmip-server -f "$work/pykmip/server.conf" -l "$work/pykmip/server.log" >/dev/null 2>&1 & pids+=($!)
wait_port "$sim_port" && wait_port "$py_port"

# APPLIANCES appliances per key server, each with its drives served, set up with its AK on the
# key server and RDL enabled, the state worked on directly (no sedlockd: the storm is the boot).
make_fleet() {  # NAME PORT
  local name="$1" port="$2"
  for i in $(seq 1 "$count"); do
    local a="$work/$name$i"
    "$sedsim" appliance create "$a" --drives 2 --size 1M --key-servers 0 --shared-key-server "$kmip@$port" --name "storm-$name-$i" >/dev/null
    setsid "$sedsim" serve "$a/drives" >/dev/null 2>&1 & pids+=($!)
  done
  for i in $(seq 1 "$count"); do
    local a="$work/$name$i"
    for _ in $(seq 200); do [ -S "$a/drives/sedsim.sock" ] && break; sleep 0.02; done
    local direct=(--direct --state-dir "$a/state" --boot-id-file "$a/boot_id")
    "$sedlock" keyserver add "127.0.0.1:$port" --name ks1 --cert "$a/client/ks1.pem" --key "$a/client/ks1.key" --ca "$a/client/ks1-ca.pem" "${direct[@]}" >/dev/null 2>&1
    "$sedlock" setup --provider kmip --drives "sim:$a/drives/0" "sim:$a/drives/1" "${direct[@]}" >/dev/null 2>&1
    "$sedlock" rdl enable --kmip ks1 --yes "${direct[@]}" >/dev/null 2>&1
  done
}

storm() {  # NAME: every appliance power-cycled, then every boot unlock at once
  local name="$1" outs=()
  for i in $(seq 1 "$count"); do
    "$sedsim" power-cycle "$work/$name$i/drives"
    cat /proc/sys/kernel/random/uuid > "$work/$name$i/boot_id"
  done
  local start boots=()
  start="$(now)"
  for i in $(seq 1 "$count"); do
    "$sedlockd" boot-unlock --config "$work/$name$i/sedlockd.toml" --boot-id-file "$work/$name$i/boot_id" \
      > "$work/$name$i/boot.out" 2>/dev/null & boots+=($!)
  done
  local failed=0
  for p in "${boots[@]}"; do wait "$p" || failed=$((failed + 1)); done
  local end
  end="$(now)"
  local unlocked trips
  unlocked=$(cat "$work/$name"*/boot.out | grep -c '^unlocked 2/2 drives' || true)
  trips=$(cat "$work/$name"*/boot.out | sed -n 's/.*keys in \([0-9]*\) KMIP round trip.*/\1/p' | sort -n | uniq -c | awk '{ printf "%s%d boots: %d", sep, $1, $2; sep = ", " }')
  echo "${name}_storm_all_unlocked_ms $(ms "$start" "$end")"
  echo "${name}_storm_unlocked $unlocked/$count (failed $failed)"
  echo "${name}_storm_round_trips_per_boot $trips"
}

make_fleet sim "$sim_port"
storm sim
make_fleet pykmip "$py_port"
storm pykmip

# Lock on loss: one appliance of the simulated fleet under sedlockd, token tested every second.
a="$work/sim1"
"$sedlock" rdl disable --obliterate-all-data --yes --direct --state-dir "$a/state" --boot-id-file "$a/boot_id" >/dev/null 2>&1
"$sedlock" rdl enable --kmip ks1 --lock-on-loss --yes --direct --state-dir "$a/state" --boot-id-file "$a/boot_id" >/dev/null 2>&1
sed -i 's/^token_interval = .*/token_interval = 1/' "$a/sedlockd.toml"
"$sedlockd" serve --config "$a/sedlockd.toml" --boot-id-file "$a/boot_id" >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 200); do [ -S "$a/control.sock" ] && break; sleep 0.05; done
# The audit log in the state database (read-only; sedlockd writes it in WAL mode).
audit() { python3 -c "import sqlite3,sys; db=sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True); print(db.execute(sys.argv[2]).fetchone()[0])" "$a/state/state.sqlite" "$1"; }
locks() { audit "SELECT COUNT(*) FROM audit WHERE action = 'lock'"; }
last_lock_time() {  # UTC text YYYY-MM-DD HH:MM:SS.SSS as seconds since 1970
  python3 -c "import calendar,sys,time; t=sys.argv[1]; print(calendar.timegm(time.strptime(t[:19], '%Y-%m-%d %H:%M:%S')) + float('0' + t[19:]))" \
    "$(audit "SELECT at FROM audit WHERE action = 'lock' ORDER BY id DESC LIMIT 1")"
}
reactions=()
for round in 1 2 3 4 5; do
  "$sedsim" kmip admin --dir "$kmip" --trust "storm-sim-1" >/dev/null
  "$sedlock" unlock --all --control-socket "$a/control.sock" >/dev/null 2>&1 || true
  sleep 1.5   # the monitor sees the token again
  before=$(locks)
  start="$(now)"
  "$sedsim" kmip admin --dir "$kmip" --distrust "storm-sim-1" >/dev/null
  for _ in $(seq 400); do
    [ "$(locks)" -gt "$before" ] && break
    sleep 0.01
  done
  locked=$(last_lock_time)
  reactions+=("$(ms "$start" "$locked")")
done
sorted=$(printf '%s\n' "${reactions[@]}" | sort -n)
echo "lock_on_loss_reaction_ms median $(echo "$sorted" | sed -n 3p) max $(echo "$sorted" | tail -1) of 5 (${reactions[*]}), interval 1000"
