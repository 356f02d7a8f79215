#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine, as root (CI runs exactly this via .ci/run):
# formatting, lints, unit + differential + golden + live-capture integration tests, doc tests,
# the no_std build of proto, the ARM builds with their unit tests under qemu-user, and the ARM
# agents on Debian's real ARM kernels in qemu-system VMs (scripts/arm-vm.sh).
# Set HOPCAP_SKIP_ARM=1 to skip the ARM part while iterating.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install.sh

[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: the live-capture tests need root (network namespaces, AF_PACKET)" >&2; exit 2; }

echo "== installing what is missing"
need_rustup
need_pkgs iproute2 iptables iputils-ping ethtool python3 python3-prometheus-client procps file tshark util-linux systemd chromium fonts-dejavu-core clickhouse-server
need_docker_engine
rustup component add clippy rustfmt >/dev/null
rustup target add thumbv7em-none-eabihf >/dev/null

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== proto builds without std (bare metal)"
cargo build -q -p hopcap-proto --target thumbv7em-none-eabihf

echo "== tests (unit, differential vs tshark, golden, live capture in private namespaces, doc)"
# Every live test makes its own namespaces, so test binaries may run in parallel.
cargo test --workspace --lib --bins --tests
cargo test --workspace --doc
# Benchmarks are benchmarks: built here so they cannot rot, run by hand (see README).
cargo test --workspace --benches --no-run

echo "== agent size (release, x86_64 host)"
cargo build -q --release -p hopcap-agent
ls -l target/release/hopcap-agent | awk '{print "hopcap-agent x86_64: " $5 " bytes"}'

if [ "${HOPCAP_SKIP_ARM:-0}" != 1 ]; then
  echo "== ARM static builds + unit tests under qemu-user"
  scripts/build-arm.sh --test
  echo "== ARM agents on real ARM kernels (Debian 6.1 armmp/arm64 in qemu-system)"
  scripts/arm-vm.sh
fi
echo "== all tests passed"
