# shellcheck shell=bash
# Shared install helpers for scripts/ and .ci/run: install only what is missing, and survive a
# Debian mirror that is mid-sync (apt-get update then fails for one index; the rest still works).
apt_updated=0
apt_update_once() {
  [ "$apt_updated" = 1 ] && return 0
  apt-get update -qq || apt-get update -qq || echo "warning: apt-get update had errors; continuing" >&2
  apt_updated=1
}

# need_pkgs PKG... : install the Debian packages that are not installed yet. PKG may carry an
# architecture (musl-dev:armhf). When the install fails, the index it needed may be the one a
# mirror sync broke: update again and retry, twice, after a pause.
need_pkgs() {
  local missing=() p try
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update_once
  for try in 1 2 3; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >/dev/null && return 0
    [ "$try" = 3 ] && break
    echo "warning: apt-get install ${missing[*]} failed; updating the index again in $((try * 20))s" >&2
    sleep $((try * 20))
    apt_updated=0
    apt_update_once
  done
  echo "error: could not install ${missing[*]}" >&2
  return 1
}

# need_foreign_pkgs ARCH PKG... : Debian packages of another architecture (PKG:ARCH), adding
# that architecture to dpkg first when it is new.
need_foreign_pkgs() {
  local arch=$1 p pkgs=()
  shift
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    dpkg --add-architecture "$arch"
    apt_updated=0
  fi
  for p in "$@"; do pkgs+=("$p:$arch"); done
  need_pkgs "${pkgs[@]}"
}

need_armhf_musl() {
  need_foreign_pkgs armhf musl-dev
}

# need_rustup: rustup and a stable toolchain (with cargo), installed by rustup-init when missing
# (a fresh Debian has no Rust; bookworm packages no rustup). rustup-init comes from
# static.rust-lang.org, the server rustup itself downloads from, rather than through the
# sh.rustup.rs script, which not every network resolves.
need_rustup() {
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  if ! command -v rustup >/dev/null && [ -x "$bin/rustup" ]; then
    export PATH="$bin:$PATH"
  fi
  command -v rustup >/dev/null && return 0
  need_pkgs curl ca-certificates
  local dir
  dir=$(mktemp -d)
  # It must be called rustup-init: rustup picks what to do by the name it runs under.
  curl --proto '=https' --tlsv1.2 -sSf -o "$dir/rustup-init" \
    "https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init"
  chmod +x "$dir/rustup-init"
  "$dir/rustup-init" -y --no-modify-path --profile minimal
  rm -rf "$dir"
  export PATH="$bin:$PATH"
}

# need_toolchain NAME [COMPONENT...] : a rustup toolchain, installed when absent but never
# updated when present, so a dated nightly stays the one that was tested.
need_toolchain() {
  local name=$1 c
  shift
  if ! rustup toolchain list | grep -q "^$name-"; then
    rustup toolchain install "$name" --profile minimal
  fi
  for c in "$@"; do
    rustup component list --toolchain "$name" --installed | grep -q "^$c" ||
      rustup component add "$c" --toolchain "$name"
  done
}

# need_rust_target TRIPLE [TOOLCHAIN] : rustup's prebuilt std for TRIPLE.
need_rust_target() {
  local triple=$1 toolchain=${2:-}
  rustup target list --installed ${toolchain:+--toolchain "$toolchain"} | grep -qx "$triple" ||
    rustup target add "$triple" ${toolchain:+--toolchain "$toolchain"}
}

# need_docker_engine: Debian's Docker engine (dockerd, containerd, runc) and a static busybox
# for the real-Docker tests, which run their own dockerd inside a test namespace. Installed
# with every service start refused (policy-rc.d) and left disabled: a dockerd in the machine's
# own namespace would change its iptables (FORWARD policy DROP) and forwarding.
need_docker_engine() {
  local p missing=() policy=/usr/sbin/policy-rc.d made=0 rc=0
  for p in docker.io busybox-static; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# scripts/lib/install.sh: no service starts while docker.io installs\nexit 101\n' >"$policy"
    chmod +x "$policy"
    made=1
  fi
  need_pkgs "${missing[@]}" || rc=$?
  [ "$made" = 1 ] && rm -f "$policy"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl disable --now docker.socket docker.service containerd.service >/dev/null 2>&1 || true
  fi
  return "$rc"
}
