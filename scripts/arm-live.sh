#!/usr/bin/env bash
# A live capture by an emulated ARM agent, checked against tcpdump, in two private namespaces:
#   hcarm<pid>a: veth hcarm<pid>va 10.78.0.1/24  <->  hcarm<pid>b: veth hcarm<pid>vb 10.78.0.2/24
# In namespace B the agent (`--print`, under its emulator: the recv fallback, since qemu-user
# has no packet ring) and tcpdump capture side by side while A pings B three times and sends B
# two UDP datagrams. Then the agent reads tcpdump's file (`--read`). Both outputs must hold each
# echo request, echo reply and datagram, and print those lines exactly as tcpdump prints them
# from its file (the live ones without their times: see below).
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

base="hcarm$$"
ns_a="${base}a" ns_b="${base}b" veth_a="${base}va" veth_b="${base}vb"
work=$(mktemp -d)
pids=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
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

# The lines checked: echo requests and replies, UDP datagrams. The traffic makes 8.
checked='ICMP echo|UDP, length'
want_checked=8

# wait_for COUNT PATTERN COMMAND... : until COMMAND prints COUNT lines matching PATTERN, for at
# most 30 s (a readiness wait, not a timing assertion: what was seen is checked afterwards).
wait_for() {
  local count=$1 pattern=$2
  shift 2
  for _ in $(seq 300); do
    [ "$("$@" 2>/dev/null | grep -cE "$pattern")" -ge "$count" ] && return 0
    sleep 0.1
  done
  echo "arm-live.sh: fewer than $count lines matching /$pattern/ from $*" >&2
  return 1
}

# Each started as one command (no function, no subshell) so that $! is the process itself.
# tcpdump -Z root: the file is written as root into our private work folder.
ip netns exec "$ns_b" tcpdump -Z root -n -i "$veth_b" -U -s 0 -w "$work/live.pcap" \
  2>"$work/tcpdump.err" &
pids+=($!)
ip netns exec "$ns_b" "${runner[@]}" "$agent" --print >"$work/live.out" 2>"$work/agent.err" &
pids+=($!)
wait_for 1 "listening on" cat "$work/tcpdump.err"
wait_for 1 "capturing netns" cat "$work/agent.err"

in_a ping -n -q -c 3 -i 0.2 -W 2 10.78.0.2 >/dev/null
# bash's /dev/udp sends one datagram per write; nothing listens, so B answers port unreachable.
in_a bash -c 'for n in 1 2; do printf hopcap-arm > /dev/udp/10.78.0.2/47002; done'

# tcpdump -U writes each packet as it reads it; the agent prints in time order after a short
# hold. Stop both (SIGINT: their clean stop, which flushes) once they have it all.
wait_for "$want_checked" "$checked" tcpdump -n -r "$work/live.pcap"
wait_for "$want_checked" "$checked" cat "$work/live.out"
for pid in "${pids[@]}"; do kill -INT "$pid"; done
for pid in "${pids[@]}"; do wait "$pid" || { echo "arm-live.sh: process $pid failed" >&2 && exit 1; }; done
pids=()

"${runner[@]}" "$agent" --read "$work/live.pcap" --print >"$work/read.out"
TZ=UTC tcpdump -n -r "$work/live.pcap" 2>/dev/null | grep -E "$checked" >"$work/tcpdump.sel" || true

fail=0
# check NAME FILE [SED] : FILE (agent output, live lines without their "link In|Out" label)
# holds the expected lines, whatever the ping id, times and UDP source port, and equals
# tcpdump's on them, both passed through SED when given.
check() {
  local name=$1 file=$2 edit=${3:-} got
  grep -E "$checked" "$file" >"$work/$name.sel" || true
  local expect=(
    "3 ^[0-9:.]+ IP 10\.78\.0\.1 > 10\.78\.0\.2: ICMP echo request, id [0-9]+, seq [1-3], length 64$"
    "3 ^[0-9:.]+ IP 10\.78\.0\.2 > 10\.78\.0\.1: ICMP echo reply, id [0-9]+, seq [1-3], length 64$"
    "2 ^[0-9:.]+ IP 10\.78\.0\.1\.[0-9]+ > 10\.78\.0\.2\.47002: UDP, length 10$"
  )
  local e
  for e in "${expect[@]}"; do
    got=$(grep -cE "${e#* }" "$work/$name.sel" || true)
    if [ "$got" != "${e%% *}" ]; then
      echo "arm-live.sh: $name: want ${e%% *} lines matching /${e#* }/, got $got" >&2
      fail=1
    fi
  done
  if ! diff -u <(sed -E "$edit" "$work/tcpdump.sel") <(sed -E "$edit" "$work/$name.sel") >&2; then
    echo "arm-live.sh: $name: the agent's ICMP/UDP lines differ from tcpdump's" >&2
    fail=1
  fi
}

# Live lines carry "<link> In|Out" after the time: on B, requests and datagrams come in and
# replies go out. Checked here, then taken off to compare with tcpdump.
dirs_ok=$(grep -cE "^[0-9:.]+ $veth_b (In IP 10\.78\.0\.1[ .]|Out IP 10\.78\.0\.2 > 10\.78\.0\.1: ICMP echo reply)" \
  "$work/live.out" || true)
if [ "$dirs_ok" != "$want_checked" ]; then
  echo "arm-live.sh: live: want $want_checked lines on $veth_b in the right direction, got $dirs_ok" >&2
  fail=1
fi
for f in live read; do
  echo "-- agent ${runner[*]:-native} ($f) printed:"
  sed 's/^/   /' "$work/$f.out"
done
sed -E "s/^([0-9:.]+) $veth_b (In|Out|B|M|P) /\\1 /" "$work/live.out" >"$work/live.stripped"
# Live times are the agent's own reading of the kernel stamp: usually tcpdump's to the µs, but a
# frame the kernel had not stamped before the taps gets one per socket, which may straddle a µs.
# So live lines are compared without their time; --read must reproduce tcpdump's times exactly.
check live "$work/live.stripped" 's/^[0-9:.]+ //'
check read "$work/read.out"

[ "$fail" = 0 ] && echo "-- arm-live: ok (${runner[*]:-native} $(basename "$agent"): live and --read)"
exit "$fail"
