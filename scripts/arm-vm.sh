#!/usr/bin/env bash
# The static ARM agents on real ARM kernels: Debian bookworm's stock 6.1 kernels booted in
# qemu-system (TCG), stock sysctls (optmem_max 10240 on armmp, 20480 on arm64). Three set-ups:
#   aarch64         the aarch64 agent on the arm64 kernel        (qemu-system-aarch64, cortex-a53)
#   armv7           the armv7 agent on the armmp kernel          (qemu-system-arm, cortex-a15)
#   armv7-on-arm64  the armv7 agent on the arm64 kernel (COMPAT: 32-bit agent, 64-bit kernel,
#                   as on a Pi with a 64-bit kernel and 32-bit OS; qemu-system-aarch64, cortex-a72)
# Each VM's /init (scripts/lib/armvm-init.sh) builds namespaces, veths, a bridge and an
# iptables MASQUERADE router, runs agents on them and checks: Ring mode (not the recv fallback);
# every ping, UDP and TCP packet seen on every link it crossed; `--filter icmp` and
# `--filter 'tcp port 8080'` keep exactly the matching packets (kernel program or user-space
# fallback: which one is reported); a namespace and bridge port made mid-run are captured;
# frames read + kernel drops during a flood equal what was sent. One agent streams to a
# `hopcap-collector serve` on this machine (127.0.0.1, reached through qemu's user network as
# 10.0.2.2); `hopcap-collector paths` must then show the pings' whole journeys, NAT included.
# Usage (root): scripts/arm-vm.sh [SETUP...]     (default: all three)
# Downloads (apt-get download: kernels, busybox-static, iptables + its libraries and libc6 for
# the VM's userland) are cached in target/armvm/. HOPCAP_ARMVM_KERNEL=6.1.0-NN picks the
# kernel ABI (default: the newest 6.1.0-NN that both armmp and arm64 have in the apt index).
# HOPCAP_ARMVM_KEEP=1 keeps the work folder (initramfs, console logs, databases);
# HOPCAP_ARMVM_INIT=FILE boots FILE as /init instead (experiments).
# Test traffic stays inside each VM's namespaces; the VM's only outside link is the agent's
# stream to the collector on the host's loopback (the VM has no default route).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install.sh

[ "$(id -u)" = 0 ] || { echo "arm-vm.sh: needs root (apt-get, dpkg-deb -x with device nodes)" >&2 && exit 2; }
all_setups=(aarch64 armv7 armv7-on-arm64)
setups=("$@")
[ ${#setups[@]} -gt 0 ] || setups=("${all_setups[@]}")
for s in "${setups[@]}"; do
  case $s in
    aarch64 | armv7 | armv7-on-arm64) ;;
    -h | --help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0" && exit 0 ;;
    *) echo "arm-vm.sh: unknown set-up $s (one of: ${all_setups[*]})" >&2 && exit 2 ;;
  esac
done

target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
cache="$target_dir/armvm"
start_all=$SECONDS
work=$(mktemp -d /tmp/hcarmvm.XXXXXX)
collector_pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  if [ -n "$collector_pid" ] && kill -0 "$collector_pid" 2>/dev/null; then
    kill "$collector_pid" 2>/dev/null || true
    wait "$collector_pid" 2>/dev/null || true
  fi
  if [ "${HOPCAP_ARMVM_KEEP:-0}" = 1 ]; then
    echo "arm-vm.sh: work folder kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

echo "== arm-vm: host packages, agents, collector"
need_pkgs qemu-system-arm cpio file
scripts/build-arm.sh >"$work/build-arm.log" 2>&1 || { cat "$work/build-arm.log" >&2 && exit 1; }
cargo build -q -p hopcap-collector
collector="$target_dir/debug/hopcap-collector"
prep_secs=$((SECONDS - start_all))

# -- Debian packages for the VMs, downloaded once into $cache/debs and unpacked per architecture.
kernel_abi() {
  if [ -n "${HOPCAP_ARMVM_KERNEL:-}" ]; then
    echo "$HOPCAP_ARMVM_KERNEL"
    return
  fi
  local cached
  cached=$(find "$cache/debs" -name 'linux-image-6.1.0-*-armmp_*' 2>/dev/null | sed -nE 's/.*linux-image-(6\.1\.0-[0-9]+)-armmp_.*/\1/p' | sort -V | tail -1)
  if [ -n "$cached" ] && [ -e "$(ls "$cache"/debs/linux-image-"$cached"-arm64_* 2>/dev/null | head -1)" ]; then
    echo "$cached"
    return
  fi
  comm -12 \
    <(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-armmp$' | sed -nE 's/^linux-image-(6\.1\.0-[0-9]+)-armmp .*/\1/p' | sort) \
    <(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-arm64$' | sed -nE 's/^linux-image-(6\.1\.0-[0-9]+)-arm64 .*/\1/p' | sort) |
    sort -V | tail -1
}
# Userland of the VM, per architecture: busybox, iptables (legacy) and what it loads.
userland_pkgs=(busybox-static iptables libip4tc2 libip6tc2 libxtables12 libc6)
ensure_debs() {
  local abi=$1 want=() p a missing=()
  for a in armhf arm64; do
    for p in "${userland_pkgs[@]}"; do want+=("$p:$a"); done
  done
  want+=("linux-image-$abi-armmp:armhf" "linux-image-$abi-arm64:arm64")
  mkdir -p "$cache/debs"
  for p in "${want[@]}"; do
    ls "$cache/debs/${p%%:*}_"*"_${p##*:}.deb" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "   downloading ${missing[*]}"
  local tmp="$cache/debs.part"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # apt-get download runs as _apt when it can write there; the cache is root's.
  (cd "$tmp" && apt-get download -q "${missing[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
  mv "$tmp"/*.deb "$cache/debs/"
  rm -rf "$tmp"
  for p in "${missing[@]}"; do
    ls "$cache/debs/${p%%:*}_"*"_${p##*:}.deb" >/dev/null 2>&1 || { echo "arm-vm.sh: could not download $p" >&2 && return 1; }
  done
}
for a in armhf arm64; do
  if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
    dpkg --add-architecture "$a"
    apt_updated=0
  fi
done
abi=$(kernel_abi)
if [ -z "$abi" ]; then
  apt_update_once
  abi=$(kernel_abi)
fi
[ -n "$abi" ] || { echo "arm-vm.sh: no linux-image-6.1.0-NN-armmp/arm64 pair in the apt index" >&2 && exit 1; }
if ! ensure_debs "$abi"; then
  apt_updated=0
  apt_update_once
  ensure_debs "$abi"
fi
# unpack ARCH: every deb of ARCH into $cache/root-ARCH (redone when the set of debs changes).
unpack() {
  local arch=$1 root="$cache/root-$1" list
  list=$(cd "$cache/debs" && ls -- *"_$arch.deb" | grep -E "^($(
    IFS='|'
    echo "${userland_pkgs[*]}"
  )|linux-image-$abi-(armmp|arm64))_")
  if [ "$(cat "$root/.debs" 2>/dev/null)" != "$list" ]; then
    rm -rf "$root"
    mkdir -p "$root"
    for d in $list; do dpkg-deb -x "$cache/debs/$d" "$root"; done
    echo "$list" >"$root/.debs"
  fi
}
unpack armhf
unpack arm64
echo "== arm-vm: Debian $abi kernels ($cache; downloads and unpacking $((SECONDS - start_all - prep_secs)) s)"
grep -qx 'CONFIG_COMPAT=y' "$cache/root-arm64/boot/config-$abi-arm64" ||
  { echo "arm-vm.sh: the arm64 kernel has no CONFIG_COMPAT: it cannot run the armv7 agent" >&2 && exit 1; }

# modules ROOT KVER NAME...: the .ko paths (under lib/modules/KVER/) of NAME and everything they
# depend on, dependencies first (depends= of each module's .modinfo; there is no modules.dep in
# the .deb).
modules() {
  local root=$1 kver=$2 seen=" " order=()
  shift 2
  local base="$root/lib/modules/$kver"
  visit() {
    local name=$1 file dep
    case $seen in *" $name "*) return ;; esac
    seen="$seen$name "
    file=$(find "$base/kernel" -name "$name.ko" | head -1)
    [ -n "$file" ] || file=$(find "$base/kernel" -name "${name//_/-}.ko" | head -1)
    [ -n "$file" ] || { echo "arm-vm.sh: module $name not in $kver" >&2 && return 1; }
    for dep in $(tr '\0' '\n' <"$file" | sed -n 's/^depends=//p' | tr ',' ' '); do
      visit "$dep"
    done
    order+=("${file#"$base/"}")
  }
  for m in "$@"; do visit "$m"; done
  printf '%s\n' "${order[@]}"
}
vm_modules=(virtio_mmio virtio_net veth bridge crc32c_generic ip_tables iptable_nat xt_MASQUERADE)

# initramfs SETUP KARCH KVER AGENT OUT: busybox, iptables-legacy with its libraries and loader,
# the agent, the modules and /init, all from the unpacked debs of KARCH (the kernel's own
# architecture: the agent is the only binary that differs).
initramfs() {
  local setup=$1 karch=$2 kver=$3 agent=$4 out=$5 root="$cache/root-$2" r triple
  r="$work/$setup/initramfs"
  triple=$(basename "$(dirname "$(ls "$root"/lib/*/libc.so.6)")")
  mkdir -p "$r"/{bin,sbin,dev,proc,sys,run,tmp,lib/modules,usr/sbin,usr/lib/"$triple"/xtables,lib/"$triple"}
  cp "$root/bin/busybox" "$r/bin/busybox"
  cp "$agent" "$r/bin/hopcap-agent"
  cp "${HOPCAP_ARMVM_INIT:-scripts/lib/armvm-init.sh}" "$r/init"
  chmod 755 "$r/init"
  cp "$root/usr/sbin/xtables-legacy-multi" "$r/usr/sbin/"
  ln -s xtables-legacy-multi "$r/usr/sbin/iptables"
  cp -a "$root"/lib/ld-linux* "$r/lib/"
  cp -a "$root/lib/$triple"/{ld-linux*,libc.so.6,libm.so.6} "$r/lib/$triple/"
  cp -a "$root/usr/lib/$triple"/{libxtables.so.12*,libip4tc.so.2*,libip6tc.so.2*} "$r/usr/lib/$triple/"
  cp -a "$root/usr/lib/$triple/xtables"/{libxt_MASQUERADE.so,libxt_NAT.so,libxt_standard.so} "$r/usr/lib/$triple/xtables/"
  modules "$root" "$kver" "${vm_modules[@]}" >"$r/lib/modules/order"
  while read -r m; do
    mkdir -p "$r/lib/modules/$(dirname "$m")"
    cp "$root/lib/modules/$kver/$m" "$r/lib/modules/$m"
  done <"$r/lib/modules/order"
  mknod -m 600 "$r/dev/console" c 5 1
  mknod -m 666 "$r/dev/null" c 1 3
  (cd "$r" && find . | cpio -o -H newc --owner=0:0 --quiet | gzip -1 >"$out")
}

# -- One set-up: collector on the host, VM, checks.
declare -A vm_secs=()
fails=()
run_setup() {
  local setup=$1 karch kflavour qemu cpu triple kver dir db console port t0 secs
  case $setup in
    aarch64) karch=arm64 kflavour=arm64 qemu=qemu-system-aarch64 cpu=cortex-a53 triple=aarch64-unknown-linux-musl ;;
    armv7) karch=armhf kflavour=armmp qemu=qemu-system-arm cpu=cortex-a15 triple=armv7-unknown-linux-musleabihf ;;
    armv7-on-arm64) karch=arm64 kflavour=arm64 qemu=qemu-system-aarch64 cpu=cortex-a72 triple=armv7-unknown-linux-musleabihf ;;
  esac
  kver="$abi-$kflavour"
  dir="$work/$setup"
  mkdir -p "$dir"
  db="$dir/hopcap.db"
  console="$dir/console.log"
  echo "== arm-vm: $setup: $(file -b "$target_dir/$triple/release/hopcap-agent" | cut -d, -f1-2) agent on Debian $kver ($qemu -cpu $cpu)"
  initramfs "$setup" "$karch" "$kver" "$target_dir/$triple/release/hopcap-agent" "$dir/initrd.gz"

  "$collector" -v serve --insecure --listen 127.0.0.1:0 --db "$db" 2>"$dir/collector.err" &
  collector_pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(sed -nE 's/.*listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$dir/collector.err")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$dir/collector.err" >&2 && echo "arm-vm.sh: collector did not start" >&2 && return 1; }

  t0=$(date +%s.%N)
  # Guest 10.0.2.2 is the host's loopback (slirp); the guest routes nothing else outwards.
  timeout 240 "$qemu" -M virt -cpu "$cpu" -smp 2 -m 512 -display none -monitor none \
    -serial stdio -no-reboot \
    -kernel "$cache/root-$karch/boot/vmlinuz-$kver" -initrd "$dir/initrd.gz" \
    -netdev user,id=n0,ipv6=off -device virtio-net-device,netdev=n0 \
    -append "console=ttyAMA0 panic=-1 quiet hc_setup=$setup hc_collector=10.0.2.2:$port" \
    </dev/null >"$console" 2>&1 || echo "   (qemu exited with status $?)"
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  vm_secs[$setup]=$secs

  kill -INT "$collector_pid"
  wait "$collector_pid" || echo "   (collector exited with status $?)"
  collector_pid=""

  grep -E '^HCVM ' "$console" | sed 's/^/   /'
  local ok=1
  grep -q '^HCVM RESULT pass' "$console" || ok=0

  # The collector's view of the pings: hcc's 3 requests, SNAT on the way out, and 3 replies.
  "$collector" paths --db "$db" --filter icmp >"$dir/paths.txt" 2>&1 || ok=0
  local req rep
  req=$(grep -cE '^ICMP echo request 10\.88\.0\.2 > 192\.0\.2\.2 .*: [^ ]*hcc:c0 Out → [^ ]*hcr:vc In .*→ [^ ]*hcr:br0 In .*→ \[SNAT 10\.88\.0\.2→192\.0\.2\.1\] [^ ]*hcr:wan0 Out .*→ [^ ]*hcs:s0 In' "$dir/paths.txt" || true)
  rep=$(grep -cE '^ICMP echo reply 192\.0\.2\.2 > 192\.0\.2\.1 .*: [^ ]*hcs:s0 Out → [^ ]*hcr:wan0 In .*→ \[DNAT 192\.0\.2\.1→10\.88\.0\.2\] [^ ]*hcr:br0 Out .*→ [^ ]*hcr:vc Out .*→ [^ ]*hcc:c0 In' "$dir/paths.txt" || true)
  if [ "$req" = 3 ] && [ "$rep" = 3 ]; then
    echo "   collector paths: hcc's 3 echo requests c0 → vc → br0 → [SNAT] wan0 → s0 and 3 replies back with [DNAT], whole"
  else
    echo "   collector paths: FAIL: want 3 whole requests and 3 whole replies, got $req and $rep"
    ok=0
  fi
  # The clock step (+3 days, mid-ping): hcd's 12 pings, each whole, in order, all on the new
  # clock (their first hops within a few seconds of each other, not 3 days apart).
  "$collector" paths --db "$db" --board armvm-clock --filter icmp --json >"$dir/paths-step.json" 2>&1 || ok=0
  if python3 - "$dir/paths-step.json" <<'PY'
import json, sys
js = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
req = [j for j in js if "echo request" in j["packet"]]
rep = [j for j in js if "echo reply" in j["packet"]]
whole = all(j["complete"] and len(j["hops"]) >= 4 for j in req + rep)
firsts = [float(j["hops"][0]["ts"]) for j in req]
ordered = firsts == sorted(firsts)
span = max(firsts) - min(firsts) if firsts else -1
print(f"   clock step: {len(req)} requests, {len(rep)} replies; whole {whole}, in order {ordered}, first hops within {span:.2f} s")
sys.exit(0 if len(req) == 12 and len(rep) == 12 and whole and ordered and 0 <= span < 10 else 1)
PY
  then
    echo "   clock step: hcd's 12 pings whole and in order across a +3 day step"
  else
    echo "   clock step: FAIL"
    ok=0
  fi
  echo "   VM wall time: ${vm_secs[$setup]} s"
  if [ "$ok" != 1 ]; then
    echo "---- $setup: console log ($console)"
    cat "$console"
    echo "---- $setup: collector paths --filter icmp"
    cat "$dir/paths.txt"
    echo "---- $setup: collector log"
    tail -30 "$dir/collector.err"
    fails+=("$setup")
  else
    head -4 "$dir/paths.txt" | sed 's/^/   | /'
  fi
}

for s in "${setups[@]}"; do run_setup "$s"; done

echo "== arm-vm: VM wall times: $(for s in "${setups[@]}"; do printf '%s %s s; ' "$s" "${vm_secs[$s]:-?}"; done)total $((SECONDS - start_all)) s (of which $prep_secs s host packages and builds)"
if [ ${#fails[@]} -gt 0 ]; then
  echo "arm-vm.sh: FAILED on: ${fails[*]}" >&2
  exit 1
fi
echo "== arm-vm: ok (${setups[*]})"
