#!/usr/bin/env bash
# The release files of the images, in KSA_RELEASE_DIR (default dist-release/, git-ignored):
#
#   k8s-keystone-auth-<version>-amd64.tar   podman save (docker-archive: docker load, podman load)
#   k8s-keystone-auth-<version>-arm64.tar
#   sbom.cdx.json                           CycloneDX SBOM of the production dependencies, as
#                                           /app/sbom.cdx.json in both images
#   SHA256SUMS                              of the three (sha256sum -c SHA256SUMS)
#
#   bash scripts/image/release.sh           builds first (scripts/image/build.sh)
#
# KSA_RELEASE_BUILD=0 uses the images already built. The directory is replaced as a whole, so
# it never holds files of two builds.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/image/lib.sh
. scripts/image/lib.sh

OUT=${KSA_RELEASE_DIR:-dist-release}
[ "${KSA_RELEASE_BUILD:-1}" = 0 ] || bash scripts/image/build.sh

mkdir -p "$(dirname "$OUT")"
tmp=$(mktemp -d "$(dirname "$OUT")/.release.XXXXXX")
ctr=
cleanup() { [ -z "$ctr" ] || "${PODMAN[@]}" rm -f "$ctr" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT

for arch in amd64 arm64; do
  image="$KSA_IMAGE_NAME:$KSA_VERSION-$arch"
  have_image "$image" || die "no $image: run scripts/image/build.sh"
  # the SBOM from each image (a container created, never started: arm64 cannot run here)
  ctr=$("${PODMAN[@]}" create --pull=never --arch "$arch" --entrypoint /bin/true "$image")
  "${PODMAN[@]}" cp "$ctr:/app/sbom.cdx.json" "$tmp/sbom-$arch.cdx.json"
  "${PODMAN[@]}" rm "$ctr" >/dev/null && ctr=
  log "podman save $image"
  "${PODMAN[@]}" save -q --format docker-archive -o "$tmp/k8s-keystone-auth-$KSA_VERSION-$arch.tar" "$image"
done
cmp -s "$tmp/sbom-amd64.cdx.json" "$tmp/sbom-arm64.cdx.json" || die "the amd64 and arm64 images hold different SBOMs"
mv "$tmp/sbom-amd64.cdx.json" "$tmp/sbom.cdx.json" && rm "$tmp/sbom-arm64.cdx.json"
(cd "$tmp" && sha256sum -- *.tar sbom.cdx.json >SHA256SUMS)
chmod 0755 "$tmp" && rm -rf "$OUT" && mv "$tmp" "$OUT"
log "release files in $OUT:"
(cd "$OUT" && ls -l --block-size=K | tail -n +2) >&2
