#!/usr/bin/env bash
# One capture of real traffic, printed by an emulated ARM agent, in two private namespaces:
#   hcarm<pid>a: veth hcarm<pid>va 10.78.0.1/24  <->  hcarm<pid>b: veth hcarm<pid>vb 10.78.0.2/24
# A pings B three times and sends two UDP datagrams to B; the agent must print each echo request,
# echo reply and datagram, and print those lines exactly as tcpdump prints them from the file.
# Usage (root): scripts/arm-live.sh AGENT_BINARY [RUNNER...]
#   e.g. scripts/arm-live.sh target/aarch64-unknown-linux-musl/release/hopcap-agent qemu-aarch64-static
# All traffic stays between the two namespaces; they (and their veths) are deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install.sh

[ $# -ge 1 ] || { sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0" >&2 && exit 2; }
agent=$(realpath "$1")
shift
runner=("$@")
[ "$(id -u)" = 0 ] || { echo "arm-live.sh: needs root (network namespaces)" >&2 && exit 2; }
need_pkgs iproute2 iputils-ping tcpdump

# TODO(lead): switch to live capture by the emulated agent once hopcap-agent captures live
# (set live=1 below and check the agent's command line in capture_with_agent). Until then
# tcpdump writes the capture inside namespace B and the emulated agent reads it with --read.
live=0

base="hcarm$$"
ns_a="${base}a" ns_b="${base}b" veth_a="${base}va" veth_b="${base}vb"
work=$(mktemp -d)
capture_pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  if [ -n "$capture_pid" ] && kill -0 "$capture_pid" 2>/dev/null; then
    kill "$capture_pid" 2>/dev/null || true
    wait "$capture_pid" 2>/dev/null || true
  fi
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

in_a() { ip netns exec "$ns_a" "$@"; }

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$veth_a" netns "$ns_a" type veth peer name "$veth_b" netns "$ns_b"
for ns in "$ns_a" "$ns_b"; do
  # No IPv6 router solicitations or MLD reports in the capture.
  ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6'
  ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'
done
ip -n "$ns_a" addr add 10.78.0.1/24 dev "$veth_a"
ip -n "$ns_b" addr add 10.78.0.2/24 dev "$veth_b"
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up

# The lines checked below: echo requests and replies, UDP datagrams. traffic() makes 8.
checked='ICMP echo|UDP, length'
want_checked=8

# wait_for COUNT PATTERN COMMAND... : until COMMAND prints COUNT lines matching PATTERN, for at
# most 20 s (a readiness wait, not a timing assertion: what was seen is checked afterwards).
wait_for() {
  local count=$1 pattern=$2
  shift 2
  for _ in $(seq 200); do
    [ "$("$@" 2>/dev/null | grep -cE "$pattern")" -ge "$count" ] && return 0
    sleep 0.1
  done
  echo "arm-live.sh: fewer than $count lines matching /$pattern/ from $*" >&2
  return 1
}

traffic() {
  in_a ping -n -q -c 3 -i 0.2 -W 2 10.78.0.2 >/dev/null
  # bash's /dev/udp sends one datagram per write; nothing listens, so B answers port unreachable.
  in_a bash -c 'for n in 1 2; do printf hopcap-arm > /dev/udp/10.78.0.2/47002; done'
}

capture_with_tcpdump() {
  # Started as one command (no function, no subshell) so that $! is tcpdump itself, for SIGINT.
  # -Z root: the file is written as root into our private work folder.
  ip netns exec "$ns_b" tcpdump -Z root -n -i "$veth_b" -U -s 0 -w "$work/live.pcap" \
    2>"$work/tcpdump.err" &
  capture_pid=$!
  wait_for 1 "listening on" cat "$work/tcpdump.err"
  traffic
  # With -U tcpdump writes each packet as it reads it: stop once the file holds them all.
  wait_for "$want_checked" "$checked" tcpdump -n -r "$work/live.pcap"
  kill -INT "$capture_pid"
  wait "$capture_pid" || true
  capture_pid=""
  "${runner[@]}" "$agent" --read "$work/live.pcap" --print >"$work/agent.out"
}

capture_with_agent() {
  # The agent captures every link of the namespace it starts in (here: the veth in B).
  ip netns exec "$ns_b" "${runner[@]}" "$agent" --print >"$work/agent.out" 2>"$work/agent.err" &
  capture_pid=$!
  # Ready once it prints a frame: warm-up pings of another size until one shows up. This needs
  # stdout flushed per packet in live --print mode (as tcpdump -l), not only at exit.
  for _ in $(seq 50); do
    in_a ping -n -q -c 1 -s 16 -W 1 10.78.0.2 >/dev/null || true
    grep -q 'ICMP echo request.*length 24' "$work/agent.out" && break
  done
  traffic
  wait_for "$want_checked" "$checked" cat "$work/agent.out"
  kill -INT "$capture_pid"
  wait "$capture_pid" || true
  capture_pid=""
}

if [ "$live" = 1 ]; then capture_with_agent; else capture_with_tcpdump; fi

echo "-- agent (${runner[*]:-native}) printed:"
sed 's/^/   /' "$work/agent.out"

# The expected lines, whatever the ping id, sequence numbers, times and UDP source port.
fail=0
expect() { # expect COUNT REGEX
  local got
  got=$(grep -cE "$2" "$work/agent.out" || true)
  if [ "$got" != "$1" ]; then
    echo "arm-live.sh: want $1 lines matching /$2/, got $got" >&2
    fail=1
  fi
}
expect 3 '^[0-9:.]+ IP 10\.78\.0\.1 > 10\.78\.0\.2: ICMP echo request, id [0-9]+, seq [1-3], length 64$'
expect 3 '^[0-9:.]+ IP 10\.78\.0\.2 > 10\.78\.0\.1: ICMP echo reply, id [0-9]+, seq [1-3], length 64$'
expect 2 '^[0-9:.]+ IP 10\.78\.0\.1\.[0-9]+ > 10\.78\.0\.2\.47002: UDP, length 10$'

if [ "$live" = 0 ]; then
  # The same lines as tcpdump prints from the same file (UTC, as the agent prints times).
  TZ=UTC tcpdump -n -r "$work/live.pcap" 2>/dev/null | grep -E "$checked" >"$work/tcpdump.out" || true
  grep -E "$checked" "$work/agent.out" >"$work/agent.sel" || true
  if ! diff -u "$work/tcpdump.out" "$work/agent.sel" >&2; then
    echo "arm-live.sh: the agent's ICMP/UDP lines differ from tcpdump's" >&2
    fail=1
  fi
fi
[ "$fail" = 0 ] && echo "-- arm-live: ok (${runner[*]:-native} $(basename "$agent"))"
exit "$fail"
