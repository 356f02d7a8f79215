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

# Two boards in a k3s-like cluster, pods behind a cni0 bridge, a flannel VXLAN overlay (UDP 8472)
# between them, and a collector host on the same LAN:
#
#   PREFIX-pa (pod) eth0 10.244.0.2 ─ vethpa ─ PREFIX-a: cni0 10.244.0.1, flannel.1 10.244.0.0/32,
#                                              eth0 192.168.50.11 ─┐
#   PREFIX-pb (pod) eth0 10.244.1.2 ─ vethpb ─ PREFIX-b: cni0 10.244.1.1, flannel.1 10.244.1.0/32,
#                                              eth0 192.168.50.12 ─┤ PREFIX-lan: bridge sw0
#   PREFIX-srv (collector)                      eth0 192.168.50.2  ─┘
#
# flannel's static routing: each board routes the other's pod /24 via the peer's flannel.1
# address onlink, with a permanent neighbour and an fdb entry pointing at the peer's underlay IP.
bed_two_boards() {
  local p=$1 lan srv
  lan=$(ns "$p" lan); srv=$(ns "$p" srv)
  for n in "$lan" "$srv" "$(ns "$p" a)" "$(ns "$p" b)" "$(ns "$p" pa)" "$(ns "$p" pb)"; do
    ip netns add "$n"; ip -n "$n" link set lo up
  done
  ip -n "$lan" link add sw0 type bridge
  ip -n "$lan" link set sw0 up
  ip -n "$lan" link add psrv type veth peer name eth0 netns "$srv"
  ip -n "$lan" link set psrv master sw0 up
  ip -n "$srv" addr add 192.168.50.2/24 dev eth0
  ip -n "$srv" link set eth0 up
  local i
  for side in a b; do
    local brd pod
    brd=$(ns "$p" $side); pod=$(ns "$p" p$side)
    if [ $side = a ]; then i=0; else i=1; fi
    local o=$((1 - i))
    ip -n "$lan" link add "p$side" type veth peer name eth0 netns "$brd"
    ip -n "$lan" link set "p$side" master sw0 up
    ip -n "$brd" addr add "192.168.50.1$((i + 1))/24" dev eth0
    ip -n "$brd" link set eth0 up
    ip -n "$brd" link add cni0 type bridge
    ip -n "$brd" addr add "10.244.$i.1/24" dev cni0
    ip -n "$brd" link set cni0 up
    ip -n "$brd" link add "vethp$side" type veth peer name eth0 netns "$pod"
    ip -n "$brd" link set "vethp$side" master cni0 up
    ip -n "$pod" addr add "10.244.$i.2/24" dev eth0
    ip -n "$pod" link set eth0 up
    ip -n "$pod" route add default via "10.244.$i.1"
    ip -n "$brd" link add flannel.1 address "02:42:0a:f4:0$i:00" type vxlan id 1       local "192.168.50.1$((i + 1))" dev eth0 dstport 8472 nolearning
    ip -n "$brd" addr add "10.244.$i.0/32" dev flannel.1
    ip -n "$brd" link set flannel.1 up
    ip -n "$brd" route add "10.244.$o.0/24" via "10.244.$o.0" dev flannel.1 onlink
    ip -n "$brd" neigh add "10.244.$o.0" lladdr "02:42:0a:f4:0$o:00" dev flannel.1 nud permanent
    bridge -n "$brd" fdb append "02:42:0a:f4:0$o:00" dev flannel.1 dst "192.168.50.1$((o + 1))"
    ip netns exec "$brd" sysctl -qw net.ipv4.ip_forward=1
  done
}

bed_two_boards_down() {
  local p=$1
  for n in pa pb a b lan srv; do
    ip netns del "$(ns "$p" "$n")" 2>/dev/null || true
  done
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
  up2) bed_two_boards "$2" ;;
  down2) bed_two_boards_down "$2" ;;
  exec) p=$2; n=$3; shift 3; exec ip netns exec "$(ns "$p" "$n")" "$@" ;;
  *) echo "usage: $0 up|down PREFIX | exec PREFIX NS CMD..." >&2; exit 2 ;;
esac
