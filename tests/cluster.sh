# The pgsafe binary and a throwaway PostgreSQL cluster for the test scripts (tests/fidelity/run,
# tests/versions/run), sourced by them once they have set `repo`. The cluster is `pgsafe cluster start`'s,
# the same as the integration tests' and `pgsafe demo`'s (src/cluster.rs).
#
#   pgsafe_build               builds pgsafe (debug) and sets `pgsafe` to the executable cargo names, so
#                              that CARGO_TARGET_DIR and cargo's other settings are followed
#   cluster_start NAME [BIN]   starts a cluster in a new folder /tmp/pgsafe-NAME.* with the server binaries
#                              of BIN (default: found as `pgsafe cluster start` finds them: PGSAFE_PG_BIN,
#                              pg_config --bindir, the newest /usr/lib/postgresql/*/bin, PATH); exports
#                              PGHOST, PGPORT, PGUSER, PGDATABASE and DATABASE_URL, and sets cluster_dir and
#                              cluster_bin (the binaries it runs)
#   cluster_stop               stops it and removes its folder
#
# The cluster is stopped when the sourcing script ends, however it ends: by the EXIT trap below, and when
# the script is killed, by the watchdog of `pgsafe cluster start --stop-with $$`.

pgsafe_build() {
    pgsafe=$(cd "$repo" && cargo build --quiet --locked --bin pgsafe --message-format=json-render-diagnostics \
        | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable"):
        print(message["executable"])
') || return 1
    [[ -n $pgsafe && -x $pgsafe ]] || { echo "cargo named no pgsafe executable" >&2; return 1; }
}

cluster_dir='' cluster_bin=''
cluster_stop() {
    if [[ -n $cluster_dir ]]; then "$pgsafe" cluster stop "$cluster_dir" >/dev/null 2>&1 || true; fi
    cluster_dir='' cluster_bin=''
}
trap cluster_stop EXIT

cluster_start() {  # NAME [BIN]
    local dir settings
    dir=$(mktemp -d "/tmp/pgsafe-$1.XXXXXX") || return 1
    # On failure `pgsafe cluster start` removes the folder itself.
    settings=$("$pgsafe" cluster start "$dir" ${2:+--bin "$2"} --stop-with $$) || return 1
    eval "$settings"
    cluster_dir=$PGSAFE_CLUSTER_DIR cluster_bin=$PGSAFE_CLUSTER_BIN
}
