#!/usr/bin/env bash
# Builds the container images from the Dockerfile with podman:
#
#   bash scripts/image/build.sh
#
#   localhost/k8s-keystone-auth:<version>-amd64   runs here; test/image/ tests it
#   localhost/k8s-keystone-auth:<version>-arm64   the same build and deps stages (podman's layer
#                                                 cache: the app is built once, on amd64), the
#                                                 final stage on docker.io/arm64v8/node:26-bookworm-slim
#   localhost/k8s-keystone-auth:<version>         a manifest list of both (podman manifest push)
#
# (KSA_IMAGE_NAME changes localhost/k8s-keystone-auth.) First makes sure of the bases
# (scripts/image/base.sh: real or stand-in, KSA_IMAGE_BASE); builds with --pull=never, so a
# build uses exactly those. A rebuild with nothing changed is a few seconds: podman's layer cache.
#
# npm ci in the build reaches the npm registry from the host's network (--network=host: no
# bridge, no firewall rules on the host). Behind a TLS-intercepting proxy whose CA only the host
# trusts, the build needs that CA: KSA_BUILD_CA_FILE (default: $NODE_EXTRA_CA_CERTS, if set;
# empty: none) is bind-mounted read-only into the RUN steps and named by NODE_EXTRA_CA_CERTS, a
# build argument of the build stages only; it is in no layer, and the final stage has no RUN at
# all (test/image/ checks that the image holds no copy of it).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/image/lib.sh
. scripts/image/lib.sh

bash scripts/image/base.sh

[ "$(uname -m)" = x86_64 ] || die "builds on an amd64 machine only (the build stages run on the amd64 base)"
# Both bases by their full names: podman matches a short name (node:26-...) against any
# repository ending in /node, so the Dockerfile's default could find the arm64 base.
args=(build --pull=never --network=host --layers -f Dockerfile --build-arg "NODE_IMAGE=$BASE_amd64")
ca=${KSA_BUILD_CA_FILE-${NODE_EXTRA_CA_CERTS:-}}
if [ -n "$ca" ]; then
  [ -r "$ca" ] || die "KSA_BUILD_CA_FILE (or NODE_EXTRA_CA_CERTS) $ca is not readable"
  args+=(-v "$(realpath "$ca"):/run/ksa-build-ca.pem:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/ksa-build-ca.pem)
fi

for arch in amd64 arm64; do
  ref=BASE_$arch
  log "building $KSA_IMAGE_NAME:$KSA_VERSION-$arch"
  # BUILDPLATFORM and TARGETPLATFORM as build arguments: Debian bookworm's podman (buildah
  # 1.28) leaves them unset in FROM lines, and without --platform a FROM gets the platform of
  # the stage before it (so the final stage would look for an amd64 image).
  "${PODMAN[@]}" "${args[@]}" --platform "linux/$arch" --build-arg "RUNTIME_IMAGE=${!ref}" \
    --build-arg BUILDPLATFORM=linux/amd64 --build-arg "TARGETPLATFORM=linux/$arch" \
    -t "$KSA_IMAGE_NAME:$KSA_VERSION-$arch" . >&2 || die "podman build ($arch) failed"
done

list="$KSA_IMAGE_NAME:$KSA_VERSION"
"${PODMAN[@]}" manifest rm "$list" >/dev/null 2>&1 || "${PODMAN[@]}" rmi "$list" >/dev/null 2>&1 || true
"${PODMAN[@]}" manifest create "$list" >/dev/null
for arch in amd64 arm64; do
  "${PODMAN[@]}" manifest add "$list" "containers-storage:$KSA_IMAGE_NAME:$KSA_VERSION-$arch" >/dev/null
done
log "built $list (amd64, arm64)"
