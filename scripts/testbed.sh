#!/usr/bin/env bash
# A Raspberry Pi running Docker, rebuilt in private network namespaces (all names start with
# PREFIX, all addresses live only inside them):
#
#   PREFIX-ctr            PREFIX-pi (the board)                          PREFIX-rtr (the router)
#   eth0 172.17.0.2 ── vethctr ─ docker0 172.17.0.1   wlan0 192.168.43.116 ── eth0 192.168.43.1
#                               MASQUERADE 172.17.0.0/16 out wlan0           lo 198.51.100.101
#
# Usage: scripts/testbed.sh up PREFIX | down PREFIX | exec PREFIX NS CMD...
#        scripts/testbed.sh up2 PREFIX | down2 PREFIX   (two boards joined by a flannel-like
#        VXLAN overlay on UDP 8472, see the comment at bed_two_boards)
# `down` deletes exactly the namespaces `up` made; it is safe to call twice.
set -euo pipefail

ns() { echo "$1-$2"; }

bed_up() {
  local p=$1 ctr pi rtr
  ctr=$(ns "$p" ctr); pi=$(ns "$p" pi); rtr=$(ns "$p" rtr)
  for n in "$ctr" "$pi" "$rtr"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  # docker0 and the container's veth
  ip -n "$pi" link add docker0 type bridge
  ip -n "$pi" addr add 172.17.0.1/16 dev docker0
  ip -n "$pi" link set docker0 up
  ip -n "$pi" link add vethctr type veth peer name eth0 netns "$ctr"
  ip -n "$pi" link set vethctr master docker0 up
  ip -n "$ctr" addr add 172.17.0.2/16 dev eth0
  ip -n "$ctr" link set eth0 up
  ip -n "$ctr" route add default via 172.17.0.1
  # the uplink
  ip -n "$pi" link add wlan0 type veth peer name eth0 netns "$rtr"
  ip -n "$pi" addr add 192.168.43.116/24 dev wlan0
  ip -n "$pi" link set wlan0 up
  ip -n "$rtr" addr add 192.168.43.1/24 dev eth0
  ip -n "$rtr" link set eth0 up
  ip -n "$rtr" addr add 198.51.100.101/32 dev lo
  ip -n "$pi" route add default via 192.168.43.1
  ip netns exec "$pi" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$pi" iptables -t nat -A POSTROUTING -s 172.17.0.0/16 -o wlan0 -j MASQUERADE
  # port forward, as `docker run -p 8080:80` does
  ip netns exec "$pi" iptables -t nat -A PREROUTING -i wlan0 -p tcp --dport 8080 \
    -j DNAT --to-destination 172.17.0.2:80
}

bed_down() {
  local p=$1
  for n in ctr pi rtr; do
    ip netns del "$(ns "$p" "$n")" 2>/dev/null || true
  done
}

case "${1:-}" in
  up) bed_up "$2" ;;
  down) bed_down "$2" ;;
  exec) p=$2; n=$3; shift 3; exec ip netns exec "$(ns "$p" "$n")" "$@" ;;
  *) echo "usage: $0 up|down PREFIX | exec PREFIX NS CMD..." >&2; exit 2 ;;
esac
