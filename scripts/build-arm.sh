#!/usr/bin/env bash
# Build the static hopcap-agent for the boards, without Docker:
#   target/aarch64-unknown-linux-musl/release/hopcap-agent       Pi 3/4/5, 64-bit OS
#   target/armv7-unknown-linux-musleabihf/release/hopcap-agent   Pi 2/3/4, 32-bit OS
#   target/arm-unknown-linux-musleabi/release/hopcap-agent       Pi Zero (W), Pi 1 (--armv6)
# Usage: scripts/build-arm.sh [--test] [--armv6]
#   --test   also run the proto and agent tests (unit, golden, live capture) under qemu-user, then
#            one capture in private namespaces read by each emulated agent (scripts/arm-live.sh)
#   --armv6  also build the ARMv6 agent (and with --test, test it on qemu's arm1176 core)
# As root on Debian it installs what is missing: Debian packages, rustup, targets, a dated
# nightly. Each binary must come out static, stripped and at most 1 MiB, or the script fails.
# armv7 and armv6 have no prebuilt musl std on rustup here, so they are built with nightly
# -Z build-std against Debian's musl (armhf, armel); the cross gcc's libgcc_eh.a stands in for
# libunwind.a. Only hopcap-agent and hopcap-proto are built: the collector bundles SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install.sh

# The nightly that builds std for armv7/armv6: the machine image's own (rustc 1.101.0-nightly
# 2026-10-29 here, what this was tested with), so CI downloads no toolchain; HOPCAP_NIGHTLY
# picks another (e.g. nightly-2026-10-30, the same build by date).
nightly=${HOPCAP_NIGHTLY:-nightly}
max_bytes=$((1024 * 1024))
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")

want_test=0 want_armv6=0
for arg in "$@"; do
  case $arg in
    --test) want_test=1 ;;
    --armv6) want_armv6=1 ;;
    -h | --help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0" && exit 0 ;;
    *) echo "build-arm.sh: unknown argument $arg (try --help)" >&2 && exit 2 ;;
  esac
done
if [ "$want_test" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "build-arm.sh --test: the live-capture tests need root (namespaces, AF_PACKET)" >&2
  exit 2
fi

targets=(aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)
[ "$want_armv6" = 1 ] && targets+=(arm-unknown-linux-musleabi)

# The emulator that runs TRIPLE's binaries: the same commands as the runners in
# .cargo/config.toml (arm1176 is the Pi Zero / Pi 1 core: ARMv6 code only).
runner_for() {
  case $1 in
    aarch64-*) echo qemu-aarch64-static ;;
    armv7-*) echo qemu-arm-static ;;
    arm-*) echo qemu-arm-static -cpu arm1176 ;;
  esac
}

# cargo_for TRIPLE SUBCOMMAND ARGS... : cargo for one board target. The build-std targets link
# with the cross gcc through musl's specs file; their rustflags hold a computed path, so they are
# set here and not in .cargo/config.toml. (-Z build-std stays off aarch64: it breaks that link.)
cargo_for() {
  local triple=$1 sub=$2 gcc musl_dir unwind_dir flags_var
  shift 2
  case $triple in
    aarch64-*)
      cargo "$sub" --target "$triple" "$@"
      return
      ;;
    armv7-*) gcc=arm-linux-gnueabihf-gcc musl_dir=/usr/lib/arm-linux-musleabihf ;;
    arm-*) gcc=arm-linux-gnueabi-gcc musl_dir=/usr/lib/arm-linux-musleabi ;;
  esac
  unwind_dir="$target_dir/$triple-unwind"
  mkdir -p "$unwind_dir"
  ln -sf "$($gcc -print-file-name=libgcc_eh.a)" "$unwind_dir/libunwind.a"
  flags_var="CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
  env "$flags_var=-C link-self-contained=no -C link-arg=-specs=$musl_dir/musl-gcc.specs -L native=$unwind_dir" \
    cargo "+$nightly" "$sub" -Z build-std=std,panic_abort --target "$triple" "$@"
}

# check_binary TRIPLE : print the size and `file` line; fail unless static, stripped, <= 1 MiB.
check_binary() {
  local bin="$target_dir/$1/release/hopcap-agent" bytes desc
  bytes=$(stat -c %s "$bin")
  desc=$(file -b "$bin")
  printf '%-32s %8d bytes  %s\n' "$1" "$bytes" "$desc"
  case $desc in *"statically linked"*", stripped"*) ;; *)
    echo "error: $bin is not a static, stripped executable" >&2 && return 1 ;;
  esac
  [ "$bytes" -le "$max_bytes" ] || { echo "error: $bin is over $max_bytes bytes" >&2 && return 1; }
}

phase_start=$SECONDS
phase() {
  echo "   ($((SECONDS - phase_start)) s)"
  phase_start=$SECONDS
  echo "== $*"
}

echo "== installing what is missing"
need_pkgs gcc libc6-dev file gcc-arm-linux-gnueabihf qemu-user-static
need_foreign_pkgs armhf musl-dev
if [ "$want_armv6" = 1 ]; then
  need_pkgs gcc-arm-linux-gnueabi
  need_foreign_pkgs armel musl-dev
fi
[ "$want_test" = 1 ] && need_pkgs iproute2 iputils-ping tcpdump
need_rustup
need_rust_target aarch64-unknown-linux-musl
need_toolchain "$nightly" rust-src

for t in "${targets[@]}"; do
  phase "release build: $t"
  cargo_for "$t" build --release -p hopcap-agent
done

phase "sizes"
for t in "${targets[@]}"; do check_binary "$t"; done

if [ "$want_test" = 1 ]; then
  for t in "${targets[@]}"; do
    phase "tests under $(runner_for "$t"): $t"
    # Lib, bin and integration tests; doc tests run on the host only (scripts/test.sh). Tests
    # that spawn the agent (an ARM binary too) run it through HOPCAP_AGENT_RUNNER. Built at
    # opt-level 1, overflow checks and debug assertions still on: emulated at opt-level 0 the
    # proto property tests alone take minutes.
    HOPCAP_AGENT_RUNNER="$(runner_for "$t")" \
      CARGO_PROFILE_DEV_OPT_LEVEL=1 CARGO_PROFILE_TEST_OPT_LEVEL=1 \
      cargo_for "$t" test -p hopcap-proto -p hopcap-agent --tests --no-fail-fast
  done
  for t in "${targets[@]}"; do
    phase "live capture read by the emulated agent: $t"
    # shellcheck disable=SC2046 # the runner is a command with arguments
    scripts/arm-live.sh "$target_dir/$t/release/hopcap-agent" $(runner_for "$t")
  done
fi
phase "done"
