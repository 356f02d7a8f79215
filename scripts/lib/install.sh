# Shared install helpers for scripts/ and .ci/run: install only what is missing, and survive a
# Debian mirror that is mid-sync (apt-get update then fails for one index; the rest still works).
apt_updated=0
apt_update_once() {
  [ "$apt_updated" = 1 ] && return 0
  apt-get update -qq || apt-get update -qq || echo "warning: apt-get update had errors; continuing" >&2
  apt_updated=1
}

# need_pkgs PKG... : install the Debian packages that are not installed yet.
need_pkgs() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

need_armhf_musl() {
  if ! dpkg --print-foreign-architectures | grep -qx armhf; then
    dpkg --add-architecture armhf
    apt_updated=0
  fi
  need_pkgs musl-dev:armhf
}
