#!/usr/bin/env bash
# Installs what the integration tests start for real: nginx + fcgiwrap in front of
# `git http-backend` (the HTTP upstream) and OpenSSH's sshd (the SSH upstream).
# Idempotent: runs apt-get only when something is missing. Needs root (or sudo) then.
set -euo pipefail

missing=()
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

has nginx || missing+=(nginx)
has fcgiwrap || missing+=(fcgiwrap)
has sshd || missing+=(openssh-server)
# The SSH front's tests drive the OpenSSH client; the certificate recipe uses curl.
{ has ssh && has ssh-keygen; } || missing+=(openssh-client)
has curl || missing+=(curl)
if ! has git || [ ! -x "$(git --exec-path 2>/dev/null)/git-http-backend" ]; then
  missing+=(git)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "test dependencies: all present"
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
