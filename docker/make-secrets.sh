#!/bin/sh
# Creates random passwords for docker/compose.yaml in docker/secrets/ (git-ignored); existing ones are kept.
# The directory is 0700 (other users of this host cannot read it); the files are 0644 because compose
# bind-mounts them with the host's mode, and the containers' users (mysql, uid 10001) must read them.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
for name in mysql_root_password app_password plsnap_password; do
    file="$dir/$name"
    if [ ! -s "$file" ]; then
        head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n=' >"$file"
    fi
    chmod 0644 "$file"
done
echo "secrets in $dir: $(ls "$dir" | tr '\n' ' ')"
