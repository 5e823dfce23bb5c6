#!/usr/bin/env bash
# Installs what the integration tests start for real: nginx + fcgiwrap in front of
# `git http-backend` (the HTTP upstream), OpenSSH's sshd (the SSH upstream), and the OIDC
# provider (npm `oidc-provider` on Node, pinned by fixtures/oidc/package-lock.json, installed
# into a cache folder: $GITGATE_TEST_CACHE, else $XDG_CACHE_HOME/gitgate-test, else
# ~/.cache/gitgate-test, else target/test-cache; tests/harness/oidc.rs looks there).
# Idempotent: runs apt-get and npm only when something is missing. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

install_oidc_provider() {
  local cache="${GITGATE_TEST_CACHE:-${XDG_CACHE_HOME:+$XDG_CACHE_HOME/gitgate-test}}"
  cache="${cache:-${HOME:+$HOME/.cache/gitgate-test}}"
  cache="${cache:-$PWD/target/test-cache}"
  local dir="$cache/oidc-provider"
  if [ -f "$dir/node_modules/oidc-provider/package.json" ] &&
    cmp -s fixtures/oidc/package-lock.json "$dir/package-lock.json"; then
    echo "test dependencies: oidc-provider present in $dir"
    return 0
  fi
  echo "test dependencies: installing oidc-provider into $dir"
  mkdir -p "$dir"
  cp fixtures/oidc/package.json fixtures/oidc/package-lock.json "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

missing=()
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

has nginx || missing+=(nginx)
has fcgiwrap || missing+=(fcgiwrap)
has sshd || missing+=(openssh-server)
has openssl || missing+=(openssl)
has node || missing+=(nodejs)
has npm || missing+=(npm)
# ssh, ssh-keygen: the SSH upstream's mirror fetch, the SSH front's tests, the harness's keys;
# curl: the certificate recipe.
{ has ssh && has ssh-keygen; } || missing+=(openssh-client)
has curl || missing+=(curl)
# The Python standard library: clean real-world code for the secret scanner's no-finding test.
ls /usr/lib/python3.*/os.py >/dev/null 2>&1 || missing+=(python3)
if ! has git || [ ! -x "$(git --exec-path 2>/dev/null)/git-http-backend" ]; then
  missing+=(git)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "test dependencies: all present"
  install_oidc_provider
  exit 0
fi

echo "test dependencies: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "error: ${missing[*]} missing and not root (no sudo): install them first" >&2
    exit 2
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# Debian's small nginx build is nginx-light (a bare `nginx` package where it is gone).
for i in "${!missing[@]}"; do
  if [ "${missing[$i]}" = nginx ] && apt-cache show nginx-light >/dev/null 2>&1; then
    missing[$i]=nginx-light
  fi
done
# The tests start private instances on loopback; the packages' own services are not used.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
install_oidc_provider
