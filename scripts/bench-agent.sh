#!/usr/bin/env bash
# hopcap-agent next to tcpdump, on the same flood, in ONE run, inside a private Pi+Docker bed
# (scripts/testbed.sh; namespaces hcb<pid>-*, all traffic between them). Both capture on the
# board (the pi namespace):
#   tcpdump -i any -w /dev/null 'not port 7878'
#   hopcap-agent --collector 127.0.0.1:7878 --insecure (a sink on the board's loopback that
#                acks every batch, like the collector), or --json > /dev/null, or the real
#                hopcap-collector on the board's loopback over Noise (--output noise) or
#                plaintext (--output plain): the cost of encryption is noise minus plain
# and for each: CPU time (utime+stime from /proc/PID/stat) per frame it captured, the kernel's
# drops, and peak RSS (VmHWM from /proc/PID/status). Figures only; nothing is asserted.
#
# Usage: scripts/bench-agent.sh [--seconds N] [--load ping|udp] [--output collector|json|noise|plain]
#                               [--big] [--perf] [--no-build] [--agent-args "ARGS"]
#        scripts/bench-agent.sh --sweep [RATES] [--seconds N] [--out DIR]
#   --sweep       the side-by-side sweep (scripts/lib/bench_sweep.py): a UDP flood at each offered
#                 rate (datagrams/s, comma-separated, `max` = as fast as python sends; default
#                 1000,10000,30000,max), captured in turn by tcpdump -w /dev/null, tcpdump -nn,
#                 tcpdump -w - into a TCP sink, and hopcap-agent into hopcap-collector (Noise)
#                 with timeline --follow; writes DIR/sweep.md and DIR/sweep.svg (default
#                 target/bench). The agent is the static musl build when that target is
#                 installed (what ships to boards), else the host build.
#   --load ping   ping -f from the container to 198.51.100.101 (default): echo and reply
#                 cross ctr:eth0, vethctr, docker0 and wlan0 (MASQUERADE)
#   --load udp    a python UDP blaster from the container to 198.51.100.101:9 (one way)
#   --big         3 captured namespaces (board, ctr, ct2) and 20 links (7 extra veth pairs on
#                 docker0); the agent then sees the containers' eth0 too, tcpdump does not
#   --perf        build the `bench` profile (symbols) and perf-record the agent's hot spots
#   --no-build    use the binary already built
#   --agent-args  more agent flags, e.g. "--ring-kb 2048" or "--sample 4"
# Needs root, tcpdump, ping, python3 (and perf for --perf); installs tcpdump if missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
seconds=10
load=ping
output=collector
big=0
perf=0
build=1
agent_args=()
sweep=
out=
while [ $# -gt 0 ]; do
  case $1 in
    --sweep) sweep=1000,10000,30000,max
             case ${2:-} in [0-9m]*) sweep=$2; shift ;; esac ;;
    --out) out=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --load) load=$2; shift ;;
    --output) output=$2; shift ;;
    --big) big=1 ;;
    --perf) perf=1 ;;
    --no-build) build=0 ;;
    --agent-args) read -r -a agent_args <<< "$2"; shift ;;
    *) sed -n '2,33p' "$0" >&2; exit 2 ;;
  esac
  shift
done

command -v tcpdump >/dev/null || { apt-get update -qq && apt-get install -y -qq tcpdump >/dev/null; }
for tool in ping python3; do
  command -v $tool >/dev/null || { echo "bench-agent: needs $tool" >&2; exit 1; }
done

# The shipped build (opt-level s, LTO, stripped), or the bench profile (opt-level 3, symbols)
# for perf. Both land in target/release.
profile=release
[ $perf = 1 ] && profile=bench
target=${CARGO_TARGET_DIR:-$root/target}
if [ $build = 1 ]; then
  (cd "$root" && cargo build -q --profile $profile -p hopcap-agent)
  case $output in noise | plain) (cd "$root" && cargo build -q --release -p hopcap-collector) ;; esac
else
  profile="prebuilt ($(file -b "$target/release/hopcap-agent" | grep -o 'not stripped\|stripped'))"
fi
bin=${AGENT_BIN:-$target/release/hopcap-agent}
if [ -n "$sweep" ]; then
  musl=x86_64-unknown-linux-musl
  [ "$(uname -m)" = aarch64 ] && musl=aarch64-unknown-linux-musl
  if [ -z "${AGENT_BIN:-}" ] && rustup target list --installed 2>/dev/null | grep -qx $musl; then
    [ $build = 1 ] && (cd "$root" && cargo build -q --release --target $musl -p hopcap-agent)
    bin=$target/$musl/release/hopcap-agent
  fi
  [ $build = 1 ] && (cd "$root" && cargo build -q --release -p hopcap-collector)
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
p=hcb$$
work=$(mktemp -d /tmp/hopcap-bench.XXXXXX)
pids=()
extra_ns=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$here/testbed.sh" down $p
  for n in "${extra_ns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT

"$here/testbed.sh" up $p
pi=$p-pi
netns_args=()
namespaces=1
if [ $big = 1 ]; then
  ct2=$p-ct2
  extra_ns+=("$ct2")
  ip netns add $ct2
  ip -n $ct2 link set lo up
  ip -n $pi link add vethct2 type veth peer name eth0 netns $ct2
  ip -n $pi link set vethct2 master docker0 up
  ip -n $ct2 addr add 172.17.0.3/16 dev eth0
  ip -n $ct2 link set eth0 up
  for i in 1 2 3 4 5 6 7; do
    ip -n $pi link add xa$i type veth peer name xb$i
    ip -n $pi link set xa$i master docker0 up
    ip -n $pi link set xb$i up
  done
  netns_args=(--netns "$p-ctr,$ct2")
  namespaces=3
fi
if [ -n "$sweep" ]; then
  echo "== sweep: $bin ($(file -b "$bin" | grep -o "static-pie linked\|statically linked\|dynamically linked")), ${seconds}s per run, machine load before: $load_before"
  python3 "$here/lib/bench_sweep.py" $p "$bin" "$target/release/hopcap-collector" "$seconds" \
    "$sweep" "$work" "${out:-$target/bench}"
  exit
fi
links=$(ip -n $pi -o link show up | grep -vc ': lo:' || true)
[ $big = 1 ] && links=$((links + 2))

# The collector stand-in: acks every batch (by the seq in its header), counts records.
cat > "$work/sink.py" <<'EOF'
import socket, struct, sys
def varint(b, i):
    v = s = 0
    while True:
        x = b[i]; i += 1; v |= (x & 0x7f) << s; s += 7
        if x < 0x80:
            return v, i
def enc(v):
    out = bytearray()
    while True:
        if v < 0x80:
            out.append(v); return bytes(out)
        out.append((v & 0x7f) | 0x80); v >>= 7
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 7878)); srv.listen(1)
print("ready", flush=True)
c, _ = srv.accept()
buf = bytearray(); records = batches = nbytes = 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    nbytes += len(d); buf += d
    while len(buf) >= 9:
        t = buf[4]; n = struct.unpack(">I", buf[5:9])[0]
        if len(buf) < 9 + n:
            break
        body = bytes(buf[9:9 + n]); del buf[:9 + n]
        if t == 4:  # Batch: version, agent id, seq, count
            _, i = varint(body, 0); l, i = varint(body, i); i += l
            seq, i = varint(body, i); count, i = varint(body, i)
            records += count; batches += 1
            a = enc(seq)
            c.sendall(b"HC" + struct.pack(">HBI", 1, 7, len(a)) + a)
print(f"sink: {records} records in {batches} batches, {nbytes} bytes", flush=True)
EOF

cpu_ms() { awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / t }' "/proc/$1/stat"; }
split_ms() { awk -v t="$(getconf CLK_TCK)" '{ printf "user %d ms, sys %d ms", $14 * 1000 / t, $15 * 1000 / t }' "/proc/$1/stat"; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
wait_for() { # file pattern count
  for _ in $(seq 300); do
    [ "$(grep -c "$2" "$1" 2>/dev/null || true)" -ge "$3" ] && return 0
    sleep 0.1
  done
  echo "bench-agent: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

agent_out=(--json)
if [ $output = collector ]; then
  ip netns exec $pi python3 "$work/sink.py" > "$work/sink.out" 2>&1 &
  pids+=($!)
  wait_for "$work/sink.out" ready 1
  agent_out=(--collector 127.0.0.1:7878 --insecure)
fi
if [ $output = noise ] || [ $output = plain ]; then
  security=(--insecure)
  if [ $output = noise ]; then
    "$target/release/hopcap-collector" keys init "$work/keys" --boards bench > /dev/null
    security=(--key "$work/keys/collector.key" --trusted "$work/keys/trusted-boards")
  fi
  ip netns exec $pi "$target/release/hopcap-collector" serve --listen 127.0.0.1:7878 \
    --db "$work/bench.db" "${security[@]}" > /dev/null 2> "$work/collector.err" &
  pids+=($!)
  wait_for "$work/collector.err" "listening on" 1
  agent_out=(--collector 127.0.0.1:7878 --id bench --insecure)
  [ $output = noise ] && agent_out=(--collector 127.0.0.1:7878 --key "$work/keys/boards/bench.key")
fi

ip netns exec $pi tcpdump -i any -n -w /dev/null 'not port 7878' 2> "$work/tcpdump.err" &
tcpdump_pid=$!
pids+=($tcpdump_pid)
ip netns exec $pi "$bin" "${agent_out[@]}" "${netns_args[@]}" "${agent_args[@]}" > /dev/null 2> "$work/agent.err" &
agent_pid=$!
pids+=($agent_pid)
wait_for "$work/tcpdump.err" "listening on" 1
wait_for "$work/agent.err" "capturing netns" $namespaces
sleep 0.5
idle_tcpdump=$(cpu_ms $tcpdump_pid); idle_agent=$(cpu_ms $agent_pid)
agent_hwm_idle=$(hwm_kb $agent_pid)

if [ $perf = 1 ]; then
  perf record -F 2999 --call-graph dwarf,8192 -p $agent_pid -o "$work/perf.data" -- sleep $((seconds - 1)) \
    > "$work/perf.out" 2>&1 &
  perf_pid=$!
fi
case $load in
  ping)
    ip netns exec $p-ctr ping -f -q -w "$seconds" 198.51.100.101 > "$work/load.out" 2>&1 || true ;;
  udp)
    ip netns exec $p-ctr python3 - "$seconds" > "$work/load.out" 2>&1 <<'EOF'
import socket, sys, time
end = time.time() + float(sys.argv[1]); s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("198.51.100.101", 9)); n = 0; msg = bytearray(64)
while time.time() < end:
    for _ in range(256):
        msg[:4] = n.to_bytes(4, "big"); n += 1
        try: s.send(msg)
        except OSError: pass
print(f"{n} datagrams sent")
EOF
    ;;
esac
[ $perf = 1 ] && wait $perf_pid
sleep 1  # the last ring blocks retire

cpu_tcpdump=$(cpu_ms $tcpdump_pid); cpu_agent=$(cpu_ms $agent_pid)
split_tcpdump=$(split_ms $tcpdump_pid); split_agent=$(split_ms $agent_pid)
hwm_tcpdump=$(hwm_kb $tcpdump_pid); hwm_agent=$(hwm_kb $agent_pid)
kill -INT $tcpdump_pid; kill -TERM $agent_pid
wait $tcpdump_pid || true; wait $agent_pid || true
[ $output = collector ] && wait "${pids[0]}" || true

frames_tcpdump=$(awk '/packets captured/ { print $1 }' "$work/tcpdump.err")
drops_tcpdump=$(awk '/dropped by kernel/ { print $1 }' "$work/tcpdump.err")
frames_agent=$(sed -n 's/.*: \([0-9]*\) frames seen.*/\1/p' "$work/agent.err")
drops_agent=$(sed -n 's/.*kernel drops \([0-9]*\).*/\1/p' "$work/agent.err" | awk '{ s += $1 } END { print s + 0 }')
per() { awk -v c="$1" -v i="$2" -v f="$3" 'BEGIN { if (f > 0) printf "%.2f", (c - i) * 1000 / f; else print "-" }'; }

echo "== hopcap-agent vs tcpdump: load $load ${seconds}s, output $output, $profile build,"\
  "$( [ $big = 1 ] && echo "3 namespaces" || echo "1 namespace"), $links links captured by the agent"
echo "agent flags: ${agent_out[*]} ${netns_args[*]} ${agent_args[*]}; machine load before: $load_before"
echo "load: $(tail -n 3 "$work/load.out" | tr '\n' ' ')"
printf '%-13s %10s %12s %12s %14s %10s  %s\n' "" frames "CPU ms" "µs/frame" "kernel drops" "VmHWM kB" "CPU split"
printf '%-13s %10s %12s %12s %14s %10s  %s\n' tcpdump "$frames_tcpdump" "$cpu_tcpdump" \
  "$(per "$cpu_tcpdump" "$idle_tcpdump" "$frames_tcpdump")" "$drops_tcpdump" "$hwm_tcpdump" "$split_tcpdump"
printf '%-13s %10s %12s %12s %14s %10s  %s\n' hopcap-agent "$frames_agent" "$cpu_agent" \
  "$(per "$cpu_agent" "$idle_agent" "$frames_agent")" "$drops_agent" "$hwm_agent" "$split_agent"
echo "(µs/frame: CPU during the flood over all frames captured; agent VmHWM before the flood: $agent_hwm_idle kB)"
grep -h "hopcap-agent: " "$work/agent.err" | sed 's/^/  /'
[ $output = collector ] && sed 's/^/  /' "$work/sink.out" | grep sink: || true
if [ $perf = 1 ]; then
  echo "== perf: the agent's hot spots (self time, symbols >= 0.7%)"
  perf report -i "$work/perf.data" --no-children --sort symbol --percent-limit 0.7 --stdio \
    2>/dev/null | grep -v '^#' | grep '%' | head -40  || true
fi
echo "(files in $work)"
