# A throwaway PostgreSQL cluster for the test scripts (tests/fidelity/run, tests/versions/run), sourced by
# them. The Rust side has the same in src/cluster.rs; the binaries are found in the same order.
#
#   server_bin                 prints the folder holding initdb and pg_ctl: PGSAFE_PG_BIN, pg_config --bindir,
#                              the newest /usr/lib/postgresql/*/bin, then PATH
#   cluster_start BIN NAME     initdb and start a cluster of BIN's binaries in a new folder /tmp/pgsafe-NAME.*,
#                              socket there, on a free port, fsync off; exports PGHOST, PGPORT and PGUSER
#   cluster_stop               stops it and removes its folder (also run when the sourcing script exits)
#
# Run as root, the server runs as the OS user `postgres` (initdb refuses root); binaries that `postgres`
# cannot reach (under root's home) are copied into the cluster's folder first.

as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

server_bin() {
    local bin=${PGSAFE_PG_BIN:-}
    if [[ -z $bin ]] && command -v pg_config >/dev/null && [[ -x $(pg_config --bindir)/initdb ]]; then bin=$(pg_config --bindir); fi
    if [[ -z $bin ]]; then bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true); fi
    if [[ -z $bin ]] && command -v initdb >/dev/null; then bin=$(dirname "$(command -v initdb)"); fi
    [[ -n $bin && -x $bin/initdb && -x $bin/pg_ctl ]] || { echo "no PostgreSQL server binaries found (set PGSAFE_PG_BIN)" >&2; return 1; }
    echo "$bin"
}

cluster_dir='' cluster_bin=''
cluster_stop() {
    if [[ -n $cluster_dir ]]; then
        as_pg "$cluster_bin/pg_ctl" -D "$cluster_dir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$cluster_dir"
    fi
    cluster_dir='' cluster_bin=''
}
trap cluster_stop EXIT

cluster_start() {  # BIN NAME
    local port
    cluster_bin=$1
    cluster_dir=$(mktemp -d "/tmp/pgsafe-$2.XXXXXX") || return 1
    if [[ $(id -u) == 0 ]]; then
        chown postgres "$cluster_dir" || return 1
        if ! runuser -u postgres -- test -x "$cluster_bin/postgres"; then
            cp -a "$cluster_bin/.." "$cluster_dir/native" && cluster_bin=$cluster_dir/native/bin || return 1
        fi
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
    as_pg "$cluster_bin/initdb" -D "$cluster_dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 \
        >"$cluster_dir/initdb.log" 2>&1 || { cat "$cluster_dir/initdb.log" >&2; return 1; }
    as_pg "$cluster_bin/pg_ctl" -D "$cluster_dir/data" -l "$cluster_dir/server.log" -w \
        -o "-k $cluster_dir -p $port -c listen_addresses='' -c fsync=off -c max_connections=50" start >/dev/null \
        || { tail -5 "$cluster_dir/server.log" >&2; return 1; }
    export PGHOST=$cluster_dir PGPORT=$port PGUSER=postgres
    unset PGDATABASE PGPASSWORD DATABASE_URL
}
