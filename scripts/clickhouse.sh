#!/usr/bin/env bash
# ClickHouse shards on this machine, for `serve --clickhouse` and its tests.
#
#   scripts/clickhouse.sh up DIR [--shards N]   N servers (default 2) on loopback, configs and
#                                              data in DIR; prints the HTTP URLs, one a line,
#                                              then the --clickhouse value (all, comma-joined)
#   scripts/clickhouse.sh down DIR             stops the servers it started (their pid files)
#                                              and removes DIR
#
# Server i (1..N) listens on HTTP port BASE+i, TCP port BASE+100+i and interserver port
# BASE+200+i, BASE = $HOPCAP_CH_PORT_BASE (default 18100). Each server knows the cluster
# `hopcap` of all N shards (remote_servers), over which the Distributed table reads.
# Installs Debian's clickhouse-server when it is missing (needs root); runs the servers as the
# clickhouse user when run as root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

usage() {
  echo "usage: $0 up DIR [--shards N] | down DIR" >&2
  exit 2
}

[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
shards=2
while [ $# -gt 0 ]; do
  case $1 in
    --shards) shards=${2:?--shards needs a number}; shift 2 ;;
    *) usage ;;
  esac
done
case $shards in '' | *[!0-9]* | 0) echo "--shards must be a positive number" >&2; exit 2 ;; esac
base=${HOPCAP_CH_PORT_BASE:-18100}

down() {
  local pidfile pid
  [ -d "$dir" ] || return 0
  for pidfile in "$dir"/shard*/server.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # Only a clickhouse-server we started (the pid may have been reused since).
    if [ -n "$pid" ] && grep -q clickhouse "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$dir"
}

config() {
  local i=$1 d=$2 s
  {
    echo "<?xml version=\"1.0\"?>"
    echo "<yandex>"
    echo "  <logger><level>warning</level><log>$d/server.log</log><errorlog>$d/error.log</errorlog><size>10M</size><count>2</count></logger>"
    echo "  <listen_host>127.0.0.1</listen_host>"
    echo "  <http_port>$((base + i))</http_port>"
    echo "  <tcp_port>$((base + 100 + i))</tcp_port>"
    echo "  <interserver_http_port>$((base + 200 + i))</interserver_http_port>"
    echo "  <interserver_http_host>127.0.0.1</interserver_http_host>"
    echo "  <path>$d/data/</path>"
    echo "  <tmp_path>$d/tmp/</tmp_path>"
    echo "  <user_files_path>$d/user_files/</user_files_path>"
    echo "  <format_schema_path>$d/format_schemas/</format_schema_path>"
    echo "  <users_config>$d/users.xml</users_config>"
    echo "  <default_profile>default</default_profile>"
    echo "  <default_database>default</default_database>"
    echo "  <mark_cache_size>268435456</mark_cache_size>"
    echo "  <max_concurrent_queries>100</max_concurrent_queries>"
    echo "  <remote_servers><hopcap>"
    for s in $(seq "$shards"); do
      echo "    <shard><replica><host>127.0.0.1</host><port>$((base + 100 + s))</port></replica></shard>"
    done
    echo "  </hopcap></remote_servers>"
    echo "</yandex>"
  } >"$d/config.xml"
  cat >"$d/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage><load_balancing>random</load_balancing></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
EOF
}

answers() {
  local port=$1
  if command -v curl >/dev/null; then
    curl -fsS "http://127.0.0.1:$port/ping" >/dev/null 2>&1
  else
    # bash's /dev/tcp: no curl on a fresh Debian.
    { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'GET /ping HTTP/1.0\r\n\r\n' >&3
    grep -q "Ok." <&3
    local ok=$?
    exec 3>&-
    return $ok
  fi
}

up() {
  if ! command -v clickhouse-server >/dev/null; then
    . "$here/lib/install.sh"
    need_pkgs clickhouse-server
  fi
  if [ -e "$dir/shard1/server.pid" ]; then
    echo "$dir already holds running shards (down first)" >&2
    exit 1
  fi
  mkdir -p "$dir"
  local i d pid as=()
  if [ "$(id -u)" = 0 ] && id clickhouse >/dev/null 2>&1; then
    as=(setpriv --reuid=clickhouse --regid=clickhouse --init-groups --)
  fi
  for i in $(seq "$shards"); do
    d="$(cd "$dir" && pwd)/shard$i"
    mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas"
    config "$i" "$d"
    [ ${#as[@]} -gt 0 ] && chown -R clickhouse: "$dir" && chmod 755 "$dir"
    # The server's own stdout/stderr go to a file: its messages before the logger starts.
    "${as[@]}" clickhouse-server --config-file="$d/config.xml" >"$d/stdout.log" 2>&1 &
    pid=$!
    # setpriv execs the server: this pid is the server's.
    echo "$pid" >"$d/server.pid"
  done
  for i in $(seq "$shards"); do
    d="$dir/shard$i"
    for _ in $(seq 300); do
      answers $((base + i)) && break
      if ! kill -0 "$(cat "$d/server.pid")" 2>/dev/null; then
        echo "clickhouse shard $i exited; its log:" >&2
        tail -20 "$d/stdout.log" "$d/error.log" >&2 2>/dev/null || true
        down
        exit 1
      fi
      sleep 0.1
    done
    if ! answers $((base + i)); then
      echo "clickhouse shard $i does not answer on port $((base + i)) after 30s" >&2
      down
      exit 1
    fi
  done
  local urls=()
  for i in $(seq "$shards"); do
    urls+=("http://127.0.0.1:$((base + i))")
    echo "http://127.0.0.1:$((base + i))"
  done
  (IFS=,; echo "--clickhouse ${urls[*]}")
}

case $cmd in
  up) up ;;
  down) down ;;
  *) usage ;;
esac
