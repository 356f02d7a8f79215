#!/usr/bin/env bash
# Build the static hopcap-agent for the boards, without Docker:
#   target/aarch64-unknown-linux-musl/release/hopcap-agent     (Pi 3/4/5, 64-bit OS)
#   target/armv7-unknown-linux-musleabihf/release/hopcap-agent (Pi 2/3/4, 32-bit OS)
# Usage: scripts/build-arm.sh [--test]   (--test also runs proto + agent unit tests under qemu-user)
# Installs what it needs (Debian packages, rustup targets and components) when missing.
# armv7 has no prebuilt musl std on rustup here, so it is built with nightly -Z build-std
# against Debian's musl-dev:armhf; libgcc_eh.a stands in for libunwind.a.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install.sh

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

need_pkgs gcc-arm-linux-gnueabihf qemu-user-static
need_armhf_musl
rustup target add aarch64-unknown-linux-musl >/dev/null
rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
rustup component add rust-src --toolchain nightly >/dev/null

unwind_dir="$PWD/target/armv7-unwind"
mkdir -p "$unwind_dir"
ln -sf "$(arm-linux-gnueabihf-gcc -print-file-name=libgcc_eh.a)" "$unwind_dir/libunwind.a"
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no -C link-arg=-specs=/usr/lib/arm-linux-musleabihf/musl-gcc.specs -L native=$unwind_dir"

echo "== aarch64-unknown-linux-musl"
cargo build --release -p hopcap-agent --target aarch64-unknown-linux-musl
echo "== armv7-unknown-linux-musleabihf (nightly, build-std)"
cargo +nightly build --release -p hopcap-agent -Z build-std=std,panic_abort \
  --target armv7-unknown-linux-musleabihf

for t in aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf; do
  bin="target/$t/release/hopcap-agent"
  printf '%-34s %8d bytes  %s\n' "$t" "$(stat -c %s "$bin")" "$(file -b "$bin" | cut -d, -f1-2,5)"
done

if [ "$want_test" = 1 ]; then
  echo "== unit tests under qemu-user"
  # Live-capture tests need the ring; under qemu-user the agent's recv fallback is what runs.
  cargo test -p hopcap-proto -p hopcap-agent --lib --target aarch64-unknown-linux-musl
  cargo +nightly test -p hopcap-proto -p hopcap-agent --lib -Z build-std=std,panic_abort \
    --target armv7-unknown-linux-musleabihf
fi
