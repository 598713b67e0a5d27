#!/bin/sh
# Installs faasd-ts on a Debian/Ubuntu host (x86_64, aarch64, armv7l) and starts it:
#
#   curl -sfL https://…/install.sh | sudo sh
#
# Installs containerd, runc, crun (the faster OCI runtime the appliance prefers) and the CNI
# plugins from the distribution's packages (plus Node.js on armv7l), puts the release artifact
# for this CPU at /usr/local/bin/faasd, then runs `faasd install`. Safe to run again: what is
# already in place is left alone.
#
# Environment:
#   FAASD_URL           where the release artifacts are (default: the latest GitHub release);
#                       files faasd-x86_64, faasd-arm64, and for armv7l faasd-armhf + faasd.mjs
#   FAASD_BINARY        a local artifact instead of a download (air-gapped hosts): the binary,
#                       or on armv7l the directory holding faasd and faasd.mjs (dist/armhf)
#   FAASD_INSTALL_ARGS  extra arguments for `faasd install` (e.g. "--data-dir /srv/faasd")
#   FAASD_ROOT          stage everything under this directory instead of / (packaging, tests):
#                       no packages are installed and systemctl is not run
#   FAASD_ARCH          use this CPU name instead of `uname -m`
set -eu

FAASD_URL=${FAASD_URL:-https://github.com/faasd-ts/faasd-ts/releases/latest/download}
FAASD_BINARY=${FAASD_BINARY:-}
FAASD_INSTALL_ARGS=${FAASD_INSTALL_ARGS:-}
FAASD_ROOT=${FAASD_ROOT:-}

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

# The artifact for this CPU: "binary NAME" or "node" (the armhf bundle run by Node.js).
artifact_for() {
  case $1 in
    x86_64 | amd64) echo "binary faasd-x86_64" ;;
    aarch64 | arm64) echo "binary faasd-arm64" ;;
    armv7l | armv7 | armhf) echo "node" ;;
    *) die "unsupported CPU \"$1\": faasd-ts is built for x86_64, aarch64 and armv7l" ;;
  esac
}

missing_packages() {
  missing=""
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing="$missing $p"
    fi
  done
  echo "$missing"
}

install_packages() {
  if command -v apt-get >/dev/null 2>&1; then
    missing=$(missing_packages "$@")
    if [ -n "$missing" ]; then
      say "installing$missing"
      DEBIAN_FRONTEND=noninteractive apt-get update -q
      # $missing is a list of package names, split on purpose.
      # shellcheck disable=SC2086
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    fi
  elif ! command -v containerd >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
    die "no apt-get here: install containerd, runc and the CNI plugins with your distribution's" \
      "packages (e.g. dnf install containerd runc containernetworking-plugins), then run this again"
  fi
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl enable --now containerd
  fi
}

download() { # URL FILE
  say "downloading $1"
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1" || die "cannot download $1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1" || die "cannot download $1"
  else
    die "neither curl nor wget is installed: apt-get install curl, or set FAASD_BINARY"
  fi
}

# Copies FROM to TO with MODE through a temporary file and a rename, unless TO already has
# exactly that content (a running faasd is never written in place).
put() { # FROM TO MODE
  if [ -f "$2" ] && [ ! -L "$2" ] && cmp -s "$1" "$2"; then
    chmod "$3" "$2"
    say "unchanged $2"
    return
  fi
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.install-new"
  chmod "$3" "$2.install-new"
  mv -f "$2.install-new" "$2"
  say "installed $2"
}

main() {
  arch=${FAASD_ARCH:-$(uname -m)}
  artifact=$(artifact_for "$arch")
  if [ -z "$FAASD_ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root: curl -sfL URL | sudo sh (or set FAASD_ROOT to stage the files elsewhere)"
  fi
  root=${FAASD_ROOT%/}
  if [ -n "$FAASD_ROOT" ]; then
    say "staging root $FAASD_ROOT: no packages, no systemctl"
  elif [ "$artifact" = node ]; then
    install_packages containerd runc crun containernetworking-plugins nodejs
  else
    install_packages containerd runc crun containernetworking-plugins
  fi

  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  bin="$root/usr/local/bin/faasd"
  case $artifact in
    binary*)
      name=${artifact#binary }
      if [ -n "$FAASD_BINARY" ]; then
        [ -f "$FAASD_BINARY" ] || die "FAASD_BINARY \"$FAASD_BINARY\" is not a file"
        cp "$FAASD_BINARY" "$tmp/faasd"
      else
        download "$FAASD_URL/$name" "$tmp/faasd"
      fi
      chmod 755 "$tmp/faasd"
      "$tmp/faasd" version >/dev/null 2>&1 ||
        die "the $name artifact does not run here (\"faasd version\" failed): wrong CPU or a broken download?"
      [ -L "$bin" ] && rm -f "$bin"
      put "$tmp/faasd" "$bin" 755
      ;;
    node)
      if [ -n "$FAASD_BINARY" ]; then
        if [ ! -f "$FAASD_BINARY/faasd" ] || [ ! -f "$FAASD_BINARY/faasd.mjs" ]; then
          die "FAASD_BINARY \"$FAASD_BINARY\" must be a directory with faasd and faasd.mjs (dist/armhf)"
        fi
        cp "$FAASD_BINARY/faasd" "$FAASD_BINARY/faasd.mjs" "$tmp/"
      else
        download "$FAASD_URL/faasd-armhf" "$tmp/faasd"
        download "$FAASD_URL/faasd.mjs" "$tmp/faasd.mjs"
      fi
      chmod 755 "$tmp/faasd"
      "$tmp/faasd" version >/dev/null 2>&1 ||
        die "the armhf bundle does not run here (\"faasd version\" failed): is Node.js 18 or newer installed?"
      lib="$root/usr/local/lib/faasd"
      put "$tmp/faasd.mjs" "$lib/faasd.mjs" 644
      put "$tmp/faasd" "$lib/faasd" 755
      if [ "$(readlink "$bin" 2>/dev/null || true)" != /usr/local/lib/faasd/faasd ]; then
        mkdir -p "$(dirname "$bin")"
        ln -sfn /usr/local/lib/faasd/faasd "$bin"
      fi
      # In a staging root the link points at the host's path; run the staged launcher itself.
      bin="$lib/faasd"
      ;;
  esac

  if [ -n "$FAASD_ROOT" ]; then
    # FAASD_INSTALL_ARGS is a list of arguments, split on purpose.
    # shellcheck disable=SC2086
    "$bin" install --root "$FAASD_ROOT" $FAASD_INSTALL_ARGS
  else
    # shellcheck disable=SC2086
    "$bin" install $FAASD_INSTALL_ARGS
  fi
}

main "$@"
