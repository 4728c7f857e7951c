# Sourced by scripts/image/*.sh (from the repository's root): names, versions and caches.
# (its variables are for the scripts that source it)
# shellcheck shell=bash disable=SC2034

# Our images: <name>:<version>-amd64 and -arm64, and the manifest list <name>:<version> of both.
KSA_IMAGE_NAME=${KSA_IMAGE_NAME:-localhost/k8s-keystone-auth}
KSA_VERSION=$(node -p 'require("./package.json").version')
# The bases, as Docker Hub names them: the Dockerfile's default NODE_IMAGE, and the official
# per-architecture repository for the arm64 final stage (one local name holds one image, so a
# podman build of another platform needs the platform's own name; Docker's buildx resolves the
# multi-platform node:26-bookworm-slim instead).
BASE_amd64=docker.io/library/node:26-bookworm-slim
BASE_arm64=docker.io/arm64v8/node:26-bookworm-slim
# Packs from the npm registry, and our containers.conf (scripts/image/podman.sh).
KSA_IMAGE_CACHE=${KSA_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-keystone-auth/image}
export KSA_IMAGE_CACHE
PODMAN=(bash scripts/image/podman.sh)
# The label a stand-in base carries (our images inherit it, so they say what they were built on).
STANDIN_LABEL=io.github.k8s-keystone-auth.stand-in-base

log() { echo "image: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
have_image() { "${PODMAN[@]}" image exists "$1"; }
