#!/usr/bin/env bash
# Make sure the system tools the test suite needs are present: mariadbd (the suite starts its own throwaway
# server), zstd and jq (archive interop checks), faketime (clock-jump faults), openssl (TLS test
# certificates), systemd-analyze (unit checks), unshare (PID 1 test) and chromium (the report's browser tests, driven
# headless by Playwright; Playwright's own browser download is never used). Installs them with apt-get when
# running as root; otherwise prints the exact command to run and fails.
set -euo pipefail

missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb-install-db >/dev/null 2>&1 || [ -x /usr/bin/mariadb-install-db ] || missing+=(mariadb-server)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: $packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
    # the distribution's server is not used by the tests; do not leave one running because we installed it
    exit 0
fi
echo "missing system packages: $packages" >&2
echo "install them with: sudo apt-get install -y $packages" >&2
exit 1
