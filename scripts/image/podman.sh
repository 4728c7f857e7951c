#!/usr/bin/env bash
# podman with the engine settings the image scripts and test/image/ use, so that they work on CI
# machines like ours without touching /etc: the settings live in a file of our own that only our
# scripts point CONTAINERS_CONF at (a CONTAINERS_CONF already set is used as it is).
#
#   runtime = runc            crun fails on a cgroup v1 host without systemd; runc works there and
#                             everywhere else
#   cgroup_manager = cgroupfs no systemd to ask for cgroups
#   events_logger = file      the default, journald, needs systemd
#   default_ulimits           podman asks for nofile=1048576 and nproc=4194304 by default; above
#                             the hard limits that fails unless root has CAP_SYS_RESOURCE (ours has
#                             not), so ask for at most the hard limits of this shell
#
#   bash scripts/image/podman.sh images      any podman command
set -euo pipefail
if [ -z "${CONTAINERS_CONF:-}" ]; then
  dir=${KSA_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-keystone-auth/image}
  mkdir -p "$dir"
  cap() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
  nofile=$(cap "$(ulimit -Hn)" 1048576) nproc=$(cap "$(ulimit -Hu)" 32768)
  conf="$dir/containers.conf"
  want=$(printf '%s\n' '# written by scripts/image/podman.sh; see the comments there' \
    '[containers]' "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]" \
    '[engine]' 'runtime = "runc"' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"')
  if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
    printf '%s\n' "$want" >"$conf.$$" && mv "$conf.$$" "$conf"
  fi
  export CONTAINERS_CONF=$conf
fi
exec podman "$@"
