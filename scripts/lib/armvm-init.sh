#!/bin/busybox sh
# /init of the ARM test VMs that scripts/arm-vm.sh boots (PID 1, busybox sh, Debian's stock 6.1
# ARM kernel). It builds a small routed network in private namespaces, runs hopcap-agent on it
# and checks what the agent saw against what was sent. Each check prints one line
#   HCVM ok|FAIL <what>
# and the run ends with `HCVM RESULT pass|fail`, then the VM powers off. On a failure the agent
# logs and outputs are printed too. Kernel command line words set:
#   hc_setup     the set-up's name (only printed)
#   hc_collector HOST:PORT of the hopcap-collector on the host (through qemu's user network)
#
#   hcc: c0 10.88.0.2 ─┐                    hcr (router, NAT)                  hcs: s0 192.0.2.2
#   hcd: d0 10.88.0.3 ─┼─ vc/vd/ve ── br0 10.88.0.1 ··· MASQUERADE ··· wan0 192.0.2.1 ── s0
#   hce: e0 10.88.0.4 ─┘  (e0 and ve are made while the agents run)
#
# All test traffic stays between these namespaces. The VM's own namespace holds only lo and
# eth0 (10.0.2.15/24, no default route), which carries the agent's stream to the collector.
# Sysctls stay stock (net.core.optmem_max above all) except, in the test namespaces only,
# IPv6 off (no RS/MLD in the counts) and hcr's ip_forward.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /run /tmp
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
mkdir -p /run/netns
W=/tmp/hc
mkdir -p "$W"
cd "$W" || exit 1

failed=0
ok() { echo "HCVM ok $*"; }
bad() { echo "HCVM FAIL $*"; failed=1; }
finish() {
  if [ "$failed" != 0 ]; then
    for f in "$W"/*.log "$W"/*.err; do
      [ -f "$f" ] || continue
      echo "----- $f"
      cat "$f"
    done
    for f in "$W"/*.out; do
      [ -f "$f" ] || continue
      echo "----- $f (first 60 lines of $(wc -l <"$f"))"
      head -60 "$f"
    done
    echo "----- dmesg (tail)"
    dmesg | tail -40
    echo "HCVM RESULT fail"
  else
    echo "HCVM RESULT pass"
  fi
  sync
  poweroff -f
}
die() {
  bad "$*"
  finish
}
# Each phase's time, to see where a VM's wall time goes.
t0=$(cut -d' ' -f1 /proc/uptime)
phase() { echo "HCVM phase $* at $(cut -d' ' -f1 /proc/uptime) s (kernel up; /init at $t0 s)"; }

echo "HCVM start setup=${hc_setup:-?} kernel=$(uname -r) machine=$(uname -m)"
echo "HCVM sysctl optmem_max=$(cat /proc/sys/net/core/optmem_max) rmem_default=$(cat /proc/sys/net/core/rmem_default)"

# Modules, dependencies first (scripts/arm-vm.sh wrote the order).
while read -r m; do
  insmod "/lib/modules/$m" >>"$W/insmod.log" 2>&1 || die "insmod $m: $(tail -1 "$W/insmod.log")"
done </lib/modules/order

# -- The VM's own namespace: eth0 to the host's collector only.
ip link set lo up
ip link set eth0 up || die "no eth0 (virtio-net)"
ip addr add 10.0.2.15/24 dev eth0

# -- The test namespaces.
in_ns() {
  _n=$1
  shift
  nsenter --net="/run/netns/$_n" "$@"
}
# mkns NAME: a named namespace (bound under /run/netns) with a sleeper in it, so that links can
# be moved in by pid (busybox ip knows no netns names). IPv6 off: no RS/MLD noise in the counts.
sleepers=""
mkns() {
  touch "/run/netns/$1"
  unshare --net="/run/netns/$1" true || die "unshare --net=/run/netns/$1"
  nsenter -F --net="/run/netns/$1" sleep 100000 &
  sleepers="$sleepers $!"
  eval "pid_$1=$!"
  in_ns "$1" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6;
    echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6; ip link set lo up'
}
pid_of() { eval "echo \$pid_$1"; }
# veth NS_A NAME_A NS_B NAME_B: a veth pair between two namespaces. busybox ip cannot name
# the peer: the kernel calls it veth0; it is renamed here, before it moves (so an agent sees it
# appear in NS_B under its final name).
veth() {
  ip link add "$2" type veth || die "ip link add $2 type veth"
  ip link set veth0 name "$4" || die "rename veth0 to $4"
  ip link set "$4" netns "$(pid_of "$3")" || die "move $4 to $3"
  ip link set "$2" netns "$(pid_of "$1")" || die "move $2 to $1"
  in_ns "$3" ip link set "$4" up
  in_ns "$1" ip link set "$2" up
}
# client NS LINK ADDR PORT: a client namespace on the router's bridge through hcr:PORT.
client() {
  mkns "$1"
  client_link "$@"
}
# client_link NS LINK ADDR PORT: CLIENT's link to br0, in a namespace that exists already.
client_link() {
  veth hcr "$4" "$1" "$2"
  in_ns hcr ip link set "$4" master br0 || die "$4 into br0"
  in_ns "$1" ip addr add "$3/24" dev "$2"
  in_ns "$1" ip route add default via 10.88.0.1
}

# Static neighbours (busybox arp -s: permanent), so that no ARP ever crosses the links and the
# interface counters equal the echo/UDP/TCP packets exactly.
mac_of() { in_ns "$1" ip -o link show "$2" | sed -nE 's/.*link\/ether ([0-9a-f:]+).*/\1/p'; }
BR_MAC=02:48:43:00:00:01
# neigh CLIENT_NS LINK ADDR: CLIENT and the router know each other's address statically.
neigh() {
  in_ns "$1" arp -i "$2" -s 10.88.0.1 $BR_MAC || die "arp -s in $1"
  in_ns hcr arp -i br0 -s "$3" "$(mac_of "$1" "$2")" || die "arp -s $3 in hcr"
}

phase topology
# hce exists from the start; its link to br0 is made mid-run. (A namespace made mid-run can be
# found first through the transient `unshare` process and then keeps its pid:N label: a known
# limit of the agent's namespace naming, issue 9 item 3.)
for n in hcr hcs hce; do mkns $n; done
in_ns hcr ip link add br0 type bridge || die "ip link add br0 type bridge"
# A fixed address: otherwise the bridge takes its lowest port's, and the mid-run port (hce's)
# can change it under hcc's ARP entry; hcc's frames then reach br0 as PACKET_OTHERHOST and IP
# drops them (seen: a flood lost every request until hcc re-resolved 10.88.0.1).
in_ns hcr ip link set br0 address $BR_MAC
in_ns hcr ip addr add 10.88.0.1/24 dev br0
in_ns hcr ip link set br0 up
veth hcr wan0 hcs s0
in_ns hcr ip addr add 192.0.2.1/24 dev wan0
in_ns hcs ip addr add 192.0.2.2/24 dev s0
in_ns hcr sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
in_ns hcr iptables -t nat -A POSTROUTING -o wan0 -j MASQUERADE >"$W/iptables.log" 2>&1 ||
  die "iptables MASQUERADE: $(cat "$W/iptables.log")"
client hcc c0 10.88.0.2 vc
client hcd d0 10.88.0.3 vd
neigh hcc c0 10.88.0.2
neigh hcd d0 10.88.0.3
in_ns hcr arp -i wan0 -s 192.0.2.2 "$(mac_of hcs s0)" || die "arp -s 192.0.2.2 in hcr"
in_ns hcs arp -i s0 -s 192.0.2.1 "$(mac_of hcr wan0)" || die "arp -s 192.0.2.1 in hcs"
# The way through the NAT works before capture starts.
for c in hcc hcd; do
  in_ns $c ping -c 1 -W 5 192.0.2.2 >/dev/null || die "$c cannot reach hcs through the NAT"
done
in_ns hcr iptables -t nat -L POSTROUTING -n -v >"$W/nat-rules.log" 2>&1
grep -q MASQUERADE "$W/nat-rules.log" && ok "NAT: iptables-legacy MASQUERADE on hcr:wan0" ||
  bad "NAT rule not listed"

AGENT=/bin/hopcap-agent
# wait_log FILE PATTERN [SECONDS]: until FILE holds PATTERN (a readiness wait).
wait_log() {
  _i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    _i=$((_i + 1))
    [ $_i -gt $((${3:-30} * 10)) ] && return 1
    sleep 0.1
  done
}
# stop PID...: SIGINT (the agent's clean stop: it flushes), then wait for each.
stop() {
  for _p in "$@"; do kill -INT "$_p" 2>/dev/null; done
  for _p in "$@"; do wait "$_p" || bad "agent (pid $_p) exited with status $?"; done
}

# -- Phase 0: --doctor on the stock kernel: the ring works, and the small optmem_max of
# Debian's 6.1 ARM kernels (10240 armmp, 20480 arm64) is flagged with its fix.
common="--netns all --exclude eth0"
if $AGENT --doctor $common >"$W/doctor.out" 2>&1; then ok "--doctor exits 0"; else bad "--doctor exit status $?"; fi
sed 's/^/HCVM doctor: /' "$W/doctor.out"
grep -q "^ok   TPACKET_V3 ring works" "$W/doctor.out" && ok "--doctor: ring works" || bad "--doctor: no ring"
if [ "$(cat /proc/sys/net/core/optmem_max)" -lt 24576 ]; then
  grep -q "^WARN net.core.optmem_max $(cat /proc/sys/net/core/optmem_max) is too small" "$W/doctor.out" &&
    grep -q "fix: sysctl -w net.core.optmem_max=65536" "$W/doctor.out" &&
    ok "--doctor flags optmem_max $(cat /proc/sys/net/core/optmem_max) with its fix" ||
    bad "--doctor did not flag optmem_max"
fi

# -- Phase 1: four agents at once on every namespace: P prints, C streams to the collector,
# FI and FT print through a filter each.
phase "agents start"
$AGENT $common --print >"$W/p.out" 2>"$W/p.err" &
pid_p=$!
# --insecure: the VM is about the ARM kernels (its collector runs on the host loopback).
$AGENT $common --collector "${hc_collector:?}" --insecure --id armvm >/dev/null 2>"$W/c.err" &
pid_c=$!
$AGENT $common -v --print --filter icmp >"$W/fi.out" 2>"$W/fi.err" &
pid_fi=$!
$AGENT $common -v --print --filter 'tcp port 8080' >"$W/ft.out" 2>"$W/ft.err" &
pid_ft=$!
for a in p c fi ft; do
  wait_log "$W/$a.err" 'capturing netns "hcs"' 60 || die "agent $a did not start capturing hcs"
done
wait_log "$W/c.err" "connected to collector" 30 || die "agent c did not reach the collector"

phase "traffic"
# ICMP: 3 echo requests hcc -> hcs through the NAT.
in_ns hcc ping -c 3 -i 0.2 -W 5 192.0.2.2 >"$W/ping-c.log" 2>&1 || bad "ping from hcc"
# UDP: 3 traceroute probes from hcd that reach hcs (TTL 2), each answered port unreachable.
in_ns hcd traceroute -n -f 2 -m 2 -q 3 -w 2 192.0.2.2 >"$W/traceroute.log" 2>&1 ||
  bad "traceroute from hcd"
# TCP: one connection hcd -> hcs:8080 carrying a line each way.
in_ns hcs sh -c 'echo pong | nc -l -p 8080 >/tmp/hc/nc-server.log' &
nc_srv=$!
sleep 0.5
echo ping | in_ns hcd nc -w 5 192.0.2.2 8080 >"$W/nc-client.log" 2>&1
wait $nc_srv
grep -q pong "$W/nc-client.log" && grep -q ping "$W/nc-server.log" || bad "TCP exchange hcd <-> hcs:8080"

# Links made mid-run: hce's e0, linked to br0 by hcr:ve.
phase "mid-run link"
client_link hce e0 10.88.0.4 ve
neigh hce e0 10.88.0.4
for a in p fi; do
  wait_log "$W/$a.err" 'link added: hce:e0' 30 || bad "agent $a did not pick up hce:e0"
  wait_log "$W/$a.err" 'link added: hcr:ve' 30 || bad "agent $a did not pick up hcr:ve"
  wait_log "$W/$a.err" 'capturing netns "hce"' 30 || bad "agent $a did not capture hce"
done
wait_log "$W/c.err" 'capturing netns "hce"' 30 || bad "agent c did not capture hce"
# A new link is captured once the agent has attached a program that takes it, a little after
# it logs it: bigger pings (length 108, left out of the checks) until agents p and fi print
# hce's on hce:e0 and hcr:ve; then the 3 checked ones.
warm=0
until grep -Eq 'hcr:ve (In|P) IP .*length 108' "$W/p.out" && grep -Eq 'hcr:ve (In|P) IP .*length 108' "$W/fi.out" &&
  grep -q 'hce:e0 Out IP .*length 108' "$W/p.out" && grep -q 'hce:e0 Out IP .*length 108' "$W/fi.out"; do
  warm=$((warm + 1))
  [ $warm -gt 30 ] && { bad "agents p/fi did not print hce's pings on hce:e0 and hcr:ve"; break; }
  in_ns hce ping -c 1 -s 100 -W 2 192.0.2.2 >/dev/null 2>&1
  sleep 0.3
done
echo "HCVM mid-run link: captured by p and fi after $warm ping(s) from hce"
in_ns hce ping -c 3 -i 0.2 -W 5 192.0.2.2 >"$W/ping-e.log" 2>&1 || bad "ping from hce"
sleep 1
phase "agents stop"
stop $pid_p $pid_c $pid_fi $pid_ft

# -- Checks of phase 1.
for a in p c fi ft; do
  if grep -q 'Ring mode' "$W/$a.err" && ! grep -qE 'Recv mode|using recvmsg' "$W/$a.err"; then
    ok "agent $a: Ring mode on every namespace"
  else
    bad "agent $a: not in Ring mode: $(grep -E 'mode|recvmsg' "$W/$a.err" | head -3)"
  fi
done

# count FILE LINK DIR PATTERN: lines of FILE on LINK in DIR matching PATTERN (extended regex).
# "In" stands for every received kind tcpdump tells apart: In (to us), B, M, P (to another
# host, as a bridge port sees frames for the bridge's address).
count() {
  _dir=$3
  [ "$_dir" = In ] && _dir='(In|B|M|P)'
  grep -E "^[0-9:.]+ $2 $_dir IP .*$4" "$1" | wc -l
}
# path FILE WHAT N PATTERN LINK:DIR...: each listed link saw exactly N such packets.
path() {
  _f=$1 _what=$2 _n=$3 _pat=$4
  shift 4
  _got=""
  _bad=0
  for _ld in "$@"; do
    _c=$(count "$_f" "${_ld%:*}" "${_ld##*:}" "$_pat")
    _got="$_got ${_ld}=$_c"
    [ "$_c" = "$_n" ] || _bad=1
  done
  if [ $_bad = 0 ]; then ok "$_what: $_n on each link:$_got"; else bad "$_what: want $_n on each link, got$_got"; fi
}
# Links from a client to the server and back. hcc and hce sent 3 checked pings each (length
# 64), all through hcr:br0, wan0 and hcs:s0.
req() { echo "$1:$2:Out hcr:$3:In"; }
rep() { echo "hcr:$3:Out $1:$2:In"; }
p="$W/p.out"
E='length 64$'
path "$p" "ICMP echo request hcc" 3 "ICMP echo request.*$E" $(req hcc c0 vc)
path "$p" "ICMP echo request hce" 3 "ICMP echo request.*$E" $(req hce e0 ve)
path "$p" "ICMP echo request NAT+server" 6 "ICMP echo request.*$E" hcr:br0:In hcr:wan0:Out hcs:s0:In
path "$p" "ICMP echo reply server+NAT" 6 "ICMP echo reply.*$E" hcs:s0:Out hcr:wan0:In hcr:br0:Out
path "$p" "ICMP echo reply hcc" 3 "ICMP echo reply.*$E" $(rep hcc c0 vc)
path "$p" "ICMP echo reply hce" 3 "ICMP echo reply.*$E" $(rep hce e0 ve)
# NAT seen: the same requests leave wan0 from the router's address.
path "$p" "ICMP echo request after SNAT" 6 "192\.0\.2\.1 > 192\.0\.2\.2: ICMP echo request.*$E" hcr:wan0:Out hcs:s0:In
path "$p" "UDP probes hcd -> hcs" 3 ': UDP' $(req hcd d0 vd) hcr:br0:In hcr:wan0:Out hcs:s0:In
path "$p" "ICMP port unreachable back" 3 'unreachable' hcs:s0:Out hcr:wan0:In hcr:br0:Out $(rep hcd d0 vd)
# TCP: whatever segments the exchange took, each crossed every link once.
n_tcp_c=$(count "$p" hcs:s0 In '\.8080: ')
n_tcp_s=$(count "$p" hcs:s0 Out '\.8080 > ')
if [ "$n_tcp_c" -ge 5 ] && [ "$n_tcp_s" -ge 4 ]; then
  path "$p" "TCP hcd -> hcs:8080" "$n_tcp_c" '\.8080: ' $(req hcd d0 vd) hcr:br0:In hcr:wan0:Out hcs:s0:In
  path "$p" "TCP hcs:8080 -> hcd" "$n_tcp_s" '\.8080 > ' hcs:s0:Out hcr:wan0:In hcr:br0:Out $(rep hcd d0 vd)
else
  bad "TCP: too few segments on hcs:s0 ($n_tcp_c in, $n_tcp_s out)"
fi

# Filters: FI holds exactly P's ICMP lines, FT exactly P's TCP port 8080 lines (compared without
# their times: every socket reads the kernel's stamp on its own).
# (hce's warm-up pings, length 108, are left out: an agent may miss the first ones.)
strip() { grep -v 'length 108$' "$1" | sed -E 's/^[0-9:.]+ //' | sort; }
grep -E ' IP [^ ]+ > [^ ]+: ICMP ' "$p" >"$W/p-icmp.sel"
grep -E ' IP [0-9.]+\.8080 > | > [0-9.]+\.8080: ' "$p" | grep -v ICMP >"$W/p-tcp.sel"
check_filter() {
  _a=$1 _sel=$2 _expr=$3
  strip "$W/$_a.out" >"$W/$_a.got"
  strip "$_sel" >"$W/$_a.want"
  if cmp -s "$W/$_a.want" "$W/$_a.got"; then
    ok "filter '$_expr': $(wc -l <"$W/$_a.out") lines, exactly the unfiltered agent's matching ones"
  else
    bad "filter '$_expr': $(wc -l <"$W/$_a.out") lines vs $(wc -l <"$_sel") expected (diff want got:)"
    diff "$W/$_a.want" "$W/$_a.got" | head -20
  fi
  [ -s "$W/$_a.out" ] || bad "filter '$_expr' printed nothing"
  # Which program each namespace's socket got: "NS attached|fallback: TIER (N insns)".
  _tiers=$({
    grep 'kernel filter fallback' "$W/$_a.err" | sed -E \
      's/.*netns "([^"]*)": kernel filter fallback to the ([a-z -]+) of ([0-9]+) instructions.*/\1: \2 (\3 insns) + user-space check/'
    grep 'instructions attached' "$W/$_a.err" | sed -E \
      's/.*netns "([^"]*)": ([a-z -]+) of ([0-9]+) instructions attached.*/\1: \2 (\3 insns)/'
  } | sed 's/^: /own namespace: /' | sort -u | tr '\n' ';' | sed 's/;/; /g')
  echo "HCVM filter '$_expr': ${_tiers:-no attach lines}"
  grep -m1 'kernel filter fallback' "$W/$_a.err" | sed "s/^hopcap-agent [a-z]*: /HCVM filter '$_expr': e.g. /"
}
check_filter fi "$W/p-icmp.sel" icmp
check_filter ft "$W/p-tcp.sel" 'tcp port 8080'

# -- Phase 2: a ping flood while the agent is stopped (SIGSTOP): its small rings overflow and the
# kernel drops. Per namespace, frames read + kernel drops (PACKET_STATISTICS, as the agent's
# summary prints them) must equal the packets the namespace's links carried meanwhile, counted
# independently by the kernel's interface counters (/proc/net/dev rx + tx, lo left out); and
# every frame read must be printed.
# netdev_sum NS: rx_packets + tx_packets of NS's links but lo.
netdev_sum() {
  in_ns "$1" cat /proc/net/dev | sed 's/:/ /' | awk 'NR > 2 && $1 != "lo" { s += $3 + $11 } END { print s + 0 }'
}
phase "flood"
for n in hcc hcr hcs; do eval "before_$n=$(netdev_sum $n)"; done
$AGENT --netns hcc,hcr,hcs --exclude eth0 --ring-kb 16 --print >"$W/d.out" 2>"$W/d.err" &
pid_d=$!
wait_log "$W/d.err" 'capturing netns "hcs"' 60 || die "agent d did not start"
sleep 0.5
kill -STOP $pid_d
# (-w 20: busybox ping -A waits 1 s for each lost request; the counters below hold anyway.)
in_ns hcc ping -A -q -c 500 -w 20 192.0.2.2 >"$W/flood.log" 2>&1
kill -CONT $pid_d
# Until the agent has printed what the rings held (its output stops growing).
last=-1
while :; do
  sleep 1
  now=$(wc -l <"$W/d.out")
  [ "$now" = "$last" ] && break
  last=$now
done
stop $pid_d
for n in hcc hcr hcs; do eval "after_$n=$(netdev_sum $n)"; done
echo "HCVM flood: $(grep transmitted "$W/flood.log")"
# diag() : the router's state, printed when the flood lost requests.
diag() {
  echo "HCVM diag at $(cut -d' ' -f1 /proc/uptime) s: hcr ip neigh: $(in_ns hcr ip neigh show | tr '\n' ';')"
  echo "HCVM diag hcr links: $(in_ns hcr ip -o link show | sed -nE 's/^[0-9]+: ([^:]+): .*link\/ether ([0-9a-f:]+).*/\1 \2/p' | tr '\n' ';')"
  echo "HCVM diag hcc ip neigh: $(in_ns hcc ip neigh show | tr '\n' ';')"
  echo "HCVM diag hcr Ip: $(in_ns hcr cat /proc/net/snmp | grep '^Ip:' | tail -1)"
  echo "HCVM diag hcr conntrack: $(in_ns hcr cat /proc/net/stat/nf_conntrack | sed -n 2p)"
  echo "HCVM diag hcr dev: $(in_ns hcr cat /proc/net/dev | sed 1,2d | awk '{print $1, $3, $11, $5, $13}' | tr '\n' ';')"
  echo "HCVM diag softnet: $(cat /proc/net/softnet_stat | awk '{print $1, $2, $3}' | tr '\n' ';')"
}
if ! grep -q ' 0% packet loss' "$W/flood.log"; then
  diag
  echo "HCVM diag ping after the agent stopped: $(in_ns hcc ping -c 3 -w 5 192.0.2.2 | grep transmitted)"
  diag
fi
rx=$(sed -nE 's/.* ([0-9]+) packets received.*/\1/p' "$W/flood.log")
[ "${rx:-0}" -ge 100 ] || bad "flood: fewer than 100 echo replies: $(cat "$W/flood.log")"
grep -E ': Ring mode|frames seen' "$W/d.err" | sed 's/^/HCVM flood summary: /'
drops_total=0
for n in hcc hcr hcs; do
  want=$(($(eval "echo \$after_$n") - $(eval "echo \$before_$n")))
  line=$(grep -E "^hopcap-agent: $n: .*frames, kernel drops" "$W/d.err" | head -1)
  frames=$(echo "$line" | sed -nE 's/.* ([0-9]+) frames, kernel drops ([0-9]+).*/\1/p')
  drops=$(echo "$line" | sed -nE 's/.* ([0-9]+) frames, kernel drops ([0-9]+).*/\2/p')
  printed=$(grep -cE "^[0-9:.]+ $n:" "$W/d.out")
  if [ -z "$frames" ] || [ -z "$drops" ]; then
    bad "flood: no summary line for $n"
    continue
  fi
  drops_total=$((drops_total + drops))
  sum=$((frames + drops))
  if [ "$frames" = "$printed" ] && [ "$sum" = "$want" ]; then
    ok "flood $n: $frames frames read (= lines printed) + $drops kernel drops = $sum = packets on its links (interface counters)"
  else
    bad "flood $n: $frames frames read, $printed lines printed, $drops kernel drops: sum $sum; its links carried $want"
  fi
done
[ "$drops_total" -gt 0 ] && ok "flood: the stopped agent's rings overflowed ($drops_total kernel drops)" ||
  bad "flood: no kernel drops although the agent was stopped"

# -- A real-time clock step while an agent streams: a Pi without an RTC boots on its last
# saved time and NTP steps the clock later, by days, often under a running agent. hcd pings
# 12 times; after the 4th the clock jumps 3 days ahead (`date -s`, this VM's clock only).
# The host checks that every ping is whole in `paths`, in order, and on the new clock.
phase "clock step"
$AGENT --netns hcd,hcr,hcs --exclude eth0 --collector "${hc_collector:?}" --insecure \
  --id armvm-clock >/dev/null 2>"$W/s.err" &
pid_s=$!
wait_log "$W/s.err" 'capturing netns "hcs"' 60 || die "agent s did not start"
wait_log "$W/s.err" "connected to collector" 30 || die "agent s did not reach the collector"
sleep 0.5
in_ns hcd ping -c 12 -i 0.25 -W 5 192.0.2.2 >"$W/ping-step.log" 2>&1 &
ping_s=$!
sleep 1.1
date -s "@$(($(date +%s) + 259200))" >/dev/null || bad "date -s"
wait $ping_s || bad "ping from hcd across the clock step: $(cat "$W/ping-step.log")"
if wait_log "$W/s.err" "clock was stepped" 10; then
  ok "agent s saw the step: $(grep -o 'stepped by [^ ]* [^ ]*' "$W/s.err" | head -1)"
else
  bad "agent s did not report the clock step"
fi
sleep 1
stop $pid_s
echo "HCVM clock step: the 12 pings crossed it (the host checks their paths)"

phase done
for p in $sleepers; do kill "$p" 2>/dev/null; done
finish
