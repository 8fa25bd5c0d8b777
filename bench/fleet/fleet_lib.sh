# bench/fleet/fleet_lib.sh: what run.sh and smoke_test.sh share; sourced after bench/lib.sh's
# bench_workdir, never run.
#
#   fleet_postgres         starts a private PostgreSQL (Debian's binaries, `pg_config
#                          --bindir`; as the postgres user when run as root) in $work/pg with
#                          fsync on, creates the database `fleet`; sets $pg_url and $psql.
#                          Stopped (pg_ctl stop -m fast) on exit, after the hubs.
#   fleet_hubs N OUTPOST   makes N hub data folders and one CA folder ($work/ca, the hubs'
#                          ca_dir, made by `outpost hub site add --ca-dir`), a
#                          policy that keeps every anomaly, an operator token ($op_token,
#                          tenant `fleet`), and starts N `outpost hub serve` on $pg_url; sets
#                          $hub_args (--hub 127.0.0.1:PORT for each) and $op_ports.

fleet_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  if [[ -n ${pg_stop:-} ]]; then eval "$pg_stop" >/dev/null 2>&1 || true; fi
  bench_cleanup
}

fleet_postgres() {
  local bindir as=()
  bindir=$(pg_config --bindir)
  psql=$bindir/psql
  mkdir -p "$work/pg"
  if [[ $(id -u) == 0 ]]; then
    chmod 711 "$work"
    chown postgres "$work/pg"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bindir/initdb" -D "$work/pg/data" -U outpost -A trust -E UTF8 --locale=C \
    --no-sync --no-instructions >/dev/null
  local port
  port=$(free_port)
  # The hubs' pools and the COPY peer's psql processes together stay far below 300.
  "${as[@]}" "$bindir/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 \
    -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300" \
    start >/dev/null
  pg_stop="${as[*]} $bindir/pg_ctl -D $work/pg/data -m fast -w stop"
  trap fleet_cleanup EXIT
  "$bindir/createdb" -h 127.0.0.1 -p "$port" -U outpost fleet
  pg_url="postgresql://outpost@127.0.0.1:$port/fleet"
}

fleet_hubs() {
  local n=$1 outpost=$2 i
  # The hubs' one CA folder (ca_dir, hub/FORMAT.md section 7) and the store's schema come
  # from `site add` of a probe site of another tenant, which the fleet's tenant never sees.
  mkdir -m 700 "$work/ca"
  "$outpost" hub site add --data-dir "$work/hub0" --ca-dir "$work/ca" --store "$pg_url" \
    --site probe --tenant probe --region eu >/dev/null
  cat > "$work/policy.yaml" <<'YAML'
format: 1
version: 1
name: fleet-bench
default: keep
regions:
  eu: {raw: true}
default_region: eu
kinds:
  anomaly: {default: keep}
YAML
  op_token=$("$outpost" hub operator add --tokens-file "$work/operators.yaml" --name bench \
    --tenant fleet)
  hub_args=()
  op_ports=()
  for ((i = 0; i < n; i++)); do
    local port oport
    port=$(free_port)
    oport=$(free_port)
    cat > "$work/hub$i.yaml" <<YAML
data_dir: $work/hub$i
ca_dir: $work/ca
store: $pg_url
listen: 127.0.0.1:$port
operator_listen: 127.0.0.1:$oport
operator_tokens_file: $work/operators.yaml
policies:
  - {tenant: "*", file: $work/policy.yaml}
YAML
    "$outpost" hub serve --config "$work/hub$i.yaml" --log-level warning \
      > "$work/hub$i.out" 2> "$work/hub$i.err" &
    pids+=($!)
    hub_args+=(--hub "127.0.0.1:$port")
    op_ports+=("$oport")
  done
  for ((i = 0; i < n; i++)); do
    for _ in $(seq 300); do
      grep -q '^operator listening' "$work/hub$i.out" 2>/dev/null && break
      sleep 0.1
    done
    grep -q '^operator listening' "$work/hub$i.out" ||
      { echo "hub $i did not start: $(cat "$work/hub$i.err")" >&2; exit 1; }
  done
}
