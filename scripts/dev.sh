#!/usr/bin/env bash
# Prepares a Debian 12 host for faasd-ts from source and runs it or its tests.
#
#   bash scripts/dev.sh up [faasd up options]   install what is missing, start containerd, run `faasd up`
#   bash scripts/dev.sh test [files...]         the same preparation, then the whole test suite
#                                               (unit tests, then each e2e file in its own process),
#                                               or only the given test files
#   bash scripts/dev.sh prepare                 only the preparation
#
# Idempotent: packages already installed are not reinstalled, a running containerd is reused.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

# What the appliance and its tests use from Debian: containerd and crun (runc as the fallback, and
# for the tests of it) run functions, the CNI
# plugins network them, busybox-static and docker-registry let tests build and serve images, and
# apache2-utils' htpasswd writes the bcrypt entries of the test registry behind basic auth;
# nats-server backs the JetStream queue test, prometheus scrapes /metrics in a test, and chromium
# drives the web UI tests (through playwright-core); the install tests check units with
# systemd-analyze (systemd), install.sh with shellcheck, cloud-config.yml with cloud-init and the
# firewall rules with nft (nftables).
PACKAGES=(containerd runc crun containernetworking-plugins iptables iproute2 busybox-static
  docker-registry apache2-utils ca-certificates git nats-server prometheus chromium
  systemd shellcheck cloud-init nftables)
SOCKET=/run/containerd/containerd.sock

say() { printf 'dev.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "run as root (containerd, runc and CNI need it): sudo bash scripts/dev.sh $*"
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # cloud-init is here only for `cloud-init schema`: the marker keeps it from configuring this
    # machine (network, users) at the next boot. Its package starts no service when installed.
    if [[ " ${missing[*]} " == *" cloud-init "* ]]; then
      mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
    fi
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  # Debian's docker-registry package starts a registry on :5000 when systemd runs; tests start
  # their own on other ports, so a packaged one is left alone.
}

containerd_answers() { timeout 5 ctr --address "$SOCKET" version >/dev/null 2>&1; }

start_containerd() {
  if containerd_answers; then return; fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    say "starting containerd with systemd"
    systemctl enable --now containerd || true
  fi
  if ! containerd_answers; then
    say "starting containerd in the background (log: /var/log/containerd-dev.log)"
    setsid containerd >>/var/log/containerd-dev.log 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 60); do
    if containerd_answers; then say "containerd is up"; return; fi
    sleep 0.5
  done
  tail -n 20 /var/log/containerd-dev.log >&2 || true
  die "containerd did not answer on $SOCKET within 30 s"
}

install_node_modules() {
  if [ ! -x node_modules/deno/deno ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "npm ci (Deno and the npm dependencies, pinned in package-lock.json)"
    npm ci --no-audit --no-fund
  fi
  # The deno package links its native binary in a postinstall step; where install scripts were
  # skipped, its launcher does the same on first use.
  [ -x node_modules/deno/deno ] || node node_modules/deno/bin.cjs --version >/dev/null
}

# Runs one test path ($2) with its output kept in $1. When the Deno runtime itself panics (seen
# until session 5: "unexpected error during closedir: Bad file descriptor", from Deno 2.9.5's
# node:http2, which the containerd client no longer uses; see docs/architecture.md), and only
# then, the file is run once more, and the log says so. Failed tests never are.
run_tests() {
  local out=$1 status since before
  since=$(date +%s%3N)
  # "?" when containerd cannot be asked: then no namespace is taken for the run's own.
  before=$(ctr namespaces ls -q 2>/dev/null | paste -sd, -) || before="?"
  set +e
  node_modules/deno/deno test --allow-all "$2" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ] && grep -q "Deno has panicked" "$out"; then
    say "the Deno runtime panicked while running $2 (a Deno bug, see above); cleaning up what it left"
    # The dead process could not clean up: its appliances, registries, namespaces, networks and
    # temp dirs go first (best effort), then the file runs once more.
    node_modules/deno/deno run --allow-all scripts/clean_after_crash.ts --since "$since" \
      --namespaces-before "$before" || true
    say "running $2 once more"
    set +e
    node_modules/deno/deno test --allow-all "$2" 2>&1 | tee "$out"
    status=${PIPESTATUS[0]}
    set -e
  fi
  return "$status"
}

# What a failed file printed about its failures, again at the end of the run, where a CI log
# that keeps only its tail still shows it: Deno's ERRORS section, or the file's last lines when
# there is none (a crash).
recap_failure() {
  local file=$1 log=$2 at
  say "---- $file: what failed ----"
  at=$(grep -n "ERRORS" "$log" | head -n 1 | cut -d: -f1)
  if [ -n "$at" ]; then tail -n "+$at" "$log" | head -n 150; else tail -n 60 "$log"; fi >&2
}

# The whole suite: the unit tests in one process, then each end-to-end file in a process of its
# own, so that nothing one file leaves behind in the runtime (timers, sockets, child processes,
# file descriptors) can reach another. Every file runs even after a failure; the exit code says
# whether all passed.
run_suite() {
  local failed=() logs f i
  logs=$(mktemp -d)
  i=0
  for f in tests/unit/ tests/e2e/*_test.ts; do
    i=$((i + 1))
    run_tests "$logs/$i.log" "$f" || failed+=("$i:$f")
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    for f in "${failed[@]}"; do recap_failure "${f#*:}" "$logs/${f%%:*}.log"; done
    rm -rf "$logs"
    say "FAILED: $(printf '%s ' "${failed[@]#*:}")"
    return 1
  fi
  rm -rf "$logs"
  say "every test file passed"
}

# crun refuses a hybrid cgroup host whose v2 hierarchy (/sys/fs/cgroup/unified) holds controllers
# (this VM class: hugetlb, which no v1 hierarchy has). Such a controller, unused in v2, can be
# mounted as a v1 hierarchy instead; then `--runtime auto` picks crun. If that fails the appliance
# falls back to runc and says why.
prepare_cgroups_for_crun() {
  local unified=/sys/fs/cgroup/unified/cgroup.controllers c controllers
  [ -s "$unified" ] || return 0
  read -r -a controllers <"$unified"
  for c in "${controllers[@]}"; do
    [ -e "/sys/fs/cgroup/$c" ] && continue
    if mkdir -p "/sys/fs/cgroup/$c" && mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"; then
      say "mounted the $c cgroup controller as a v1 hierarchy, so crun can run on this hybrid host"
    else
      rmdir "/sys/fs/cgroup/$c" 2>/dev/null || true
      say "could not move the $c controller to v1: the appliance will use runc"
    fi
  done
}

prepare() {
  require_root "$@"
  install_packages
  prepare_cgroups_for_crun
  start_containerd
  install_node_modules
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  up)
    prepare up
    exec node_modules/deno/deno task -q faasd up "$@"
    ;;
  test)
    prepare test
    if [ $# -gt 0 ]; then exec node_modules/deno/deno test --allow-all "$@"; fi
    run_suite
    ;;
  prepare)
    prepare prepare
    ;;
  *)
    echo "usage: bash scripts/dev.sh (up [faasd up options] | test [test files] | prepare)" >&2
    exit 2
    ;;
esac
