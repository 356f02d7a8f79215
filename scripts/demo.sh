#!/usr/bin/env bash
# The main job, end to end on one machine: a Raspberry Pi running Docker, rebuilt in private
# network namespaces (scripts/testbed.sh), with hopcap-agent on the "board" capturing every link
# (uplink, docker0, the container's veth and, through --netns, the container's own eth0) and
# streaming to hopcap-collector on the "router". A ping, a TCP exchange and a UDP exchange go
# from the container out through the NAT, and one TCP connection comes in through the port
# forward. Then the collector prints the merged timeline and each packet's path. Part 2: two
# boards of a k3s-like cluster joined by a flannel VXLAN overlay, an agent on each, pod to pod
# pings and TCP, and the paths across both boards with the tunnel and the clock offset. It writes
# what a user opens next into HOPCAP_DEMO_OUT (default /tmp/hopcap-demo): the database, the
# board's capture as pcapng (Wireshark), the collector's export of every path as pcapng (the
# agent ships each frame's first 128 bytes: --snap-bytes), the path diagram (SVG) and the
# HTML report.
# Run as root. Everything else it creates is deleted on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install.sh

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 2; }
need_pkgs iproute2 iptables iputils-ping python3
# sudo's PATH has no ~/.cargo/bin: rustup (and cargo) are found there, or installed.
need_rustup

echo "== building (release: about 3 minutes on a fresh 2-core machine, 0 s once built)"
build_log=$(mktemp)
set +e
cargo build --release -p hopcap-agent -p hopcap-collector 2>&1 | tee "$build_log" |
  grep --line-buffered -E '^ *(Compiling|Finished)' |
  awk '/Finished/ { print "   " $0; next } { n++; if (n % 20 == 1) print "   ... compiling crate " n " (" $2 ")" }'
built=${PIPESTATUS[0]}
set -e
[ "$built" = 0 ] || { cat "$build_log" >&2; echo "demo: the build failed" >&2; exit 1; }
rm -f "$build_log"
agent=$PWD/target/release/hopcap-agent
collector=$PWD/target/release/hopcap-collector

p="hcdemo$$"
p2="hcdemo2$$"
work=$(mktemp -d)
out=${HOPCAP_DEMO_OUT:-/tmp/hopcap-demo}
mkdir -p "$out"
rm -f "$out"/hopcap.db* "$out"/two-boards.* "$out/board.pcapng" \
  "$out/paths.svg" "$out/report.html"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/testbed.sh down "$p"
  scripts/testbed.sh down2 "$p2"
  rm -rf "$work"
}
trap cleanup EXIT
scripts/testbed.sh up "$p"
in_ns() { local n=$1; shift; ip netns exec "$p-$n" "$@"; }

echo "== keys: the collector's and board pi1's (Noise IK; pi1.key would be copied to the board)"
"$collector" keys init "$work/keys" --boards pi1 >/dev/null

echo "== collector on the router (192.168.43.1:7878), agent on the board, over Noise"
ip netns exec "$p-rtr" "$collector" serve --listen 192.168.43.1:7878 --db "$out/hopcap.db" \
  --key "$work/keys/collector.key" --trusted "$work/keys/trusted-boards" 2>"$work/collector.log" &
pids+=($!)
sleep 0.5
ip netns exec "$p-pi" "$agent" --netns "$p-ctr" --collector 192.168.43.1:7878 \
  --key "$work/keys/boards/pi1.key" --snap-bytes 128 -w "$out/board.pcapng" 2>"$work/agent.log" &
agent_pid=$!
pids+=($agent_pid)
sleep 1.5

echo "== traffic: ping, TCP and UDP out through the NAT; TCP in through the port forward"
ip netns exec "$p-rtr" python3 -c '
import socket, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.51.100.101", port)); s.listen(); c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("198.51.100.101", port))
    d, a = s.recvfrom(100); s.sendto(d.upper(), a)
for f in (lambda: tcp(80), lambda: udp(53)): threading.Thread(target=f, daemon=True).start()
import time; time.sleep(4)
' &
pids+=($!)
ip netns exec "$p-ctr" python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("172.17.0.2", 80)); s.listen()
def serve():
    c, _ = s.accept(); c.sendall(b"hello from the container"); c.close()
threading.Thread(target=serve, daemon=True).start()
import time; time.sleep(4)
' &
pids+=($!)
sleep 0.5
in_ns ctr ping -c 2 -i 0.3 198.51.100.101 >/dev/null
in_ns ctr python3 -c '
import socket
c = socket.create_connection(("198.51.100.101", 80)); c.sendall(b"hi router"); c.recv(100); c.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
u.sendto(b"dns?", ("198.51.100.101", 53)); u.recvfrom(100)
'
in_ns rtr python3 -c '
import socket
c = socket.create_connection(("192.168.43.116", 8080)); c.recv(100); c.close()
'
sleep 1
# SIGTERM, like systemd: the agent flushes, says bye and prints its summary.
kill -TERM "$agent_pid"; wait "$agent_pid" || true
sed 's/^/  agent> /' "$work/agent.log" | tail -8
sleep 0.5

echo
echo "== merged timeline (hopcap-collector timeline --filter 'not ip6 and not arp')"
"$collector" timeline --db "$out/hopcap.db" --filter 'not ip6 and not arp'
echo
echo "== each packet's path (hopcap-collector paths)"
"$collector" paths --db "$out/hopcap.db" --filter 'not ip6 and not arp'
echo
echo "== boards"
"$collector" boards --db "$out/hopcap.db"
# -- Part 2: two boards of a k3s-like cluster, pods behind cni0, a flannel VXLAN overlay
# between the boards (scripts/testbed.sh up2), an agent on each, one collector on the LAN.
echo
echo "== part 2: two boards over a flannel VXLAN overlay, an agent on each, one collector"
scripts/testbed.sh up2 "$p2"
"$collector" keys init "$work/keys2" --boards board1,board2 >/dev/null
ip netns exec "$p2-srv" "$collector" serve --listen 192.168.50.2:7878 --db "$out/two-boards.db" \
  --key "$work/keys2/collector.key" --trusted "$work/keys2/trusted-boards" 2>"$work/collector2.log" &
pids+=($!)
sleep 0.5
two=()
for b in 1 2; do
  side=$([ $b = 1 ] && echo a || echo b)
  ip netns exec "$p2-$side" "$agent" --netns "$p2-p$side" \
    --collector 192.168.50.2:7878 --key "$work/keys2/boards/board$b.key" 2>"$work/agent2-$b.log" &
  two+=($!)
  pids+=($!)
done
sleep 1.5
ip netns exec "$p2-pb" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.244.1.2", 5201)); s.listen(); c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()
' &
pids+=($!)
sleep 0.3
ip netns exec "$p2-pa" ping -c 2 -i 0.3 10.244.1.2 >/dev/null
ip netns exec "$p2-pa" python3 -c '
import socket
c = socket.create_connection(("10.244.1.2", 5201)); c.sendall(b"pod to pod"); c.recv(100); c.close()
'
sleep 1
for pid in "${two[@]}"; do kill -TERM "$pid"; wait "$pid" || true; done
sleep 0.5
echo "== pod to pod across both boards (hopcap-collector paths --db two-boards.db --filter icmp)"
"$collector" paths --db "$out/two-boards.db" --filter 'icmp'
echo
# The collector has stopped writing once the agent said bye; its serve keeps running until
# the clean-up, and readers work beside it (WAL).
"$collector" diagram --db "$out/hopcap.db" --filter 'not ip6 and not arp' -o "$out/paths.svg"
"$collector" report --db "$out/hopcap.db" --filter 'not ip6 and not arp' --html "$out/report.html"
"$collector" report --db "$out/two-boards.db" --filter 'not ip6 and not arp' --html "$out/two-boards.html"
echo "== the paths as pcapng, from the collector (hopcap-collector export --pcapng)"
"$collector" export --db "$out/hopcap.db" --filter 'not ip6 and not arp' --pcapng "$out/paths.pcapng"
echo
echo "== to open next (kept after the demo):"
echo "   $out/board.pcapng   every frame the board captured, one interface per netns:link (wireshark $out/board.pcapng)"
echo "   $out/paths.pcapng   every path's packets from the collector, one interface per hop, in corrected time order;"
echo "                       each packet's journey, hop and NAT in its comment; hide the repeats of a packet on"
echo "                       later hops with the display filter: !(frame.comment contains \"hopcap.dup\")"
echo "   $out/paths.svg      the paths drawn over the board's links, with NAT and latencies"
echo "   $out/report.html    diagram, paths, latency histograms, loss and drops in one page"
echo "   $out/hopcap.db      the database: hopcap-collector timeline|paths|flows|boards --db $out/hopcap.db"
echo "   $out/two-boards.html  part 2's report: pods across two boards, VXLAN, clock offset"
echo "   $out/two-boards.db  part 2's database"
