# syntax=docker/dockerfile:1
# k8s-keystone-auth and client-keystone-auth on the current Node.js LTS.
#   docker build -t registry.example.com/k8s-keystone-auth:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t registry.example.com/k8s-keystone-auth:0.1.0 --push .
# Runs as uid/gid 65532 (numeric, so kubelet can verify runAsNonRoot), needs no writable path
# (readOnlyRootFilesystem: true works), and holds production dependencies only, with their
# CycloneDX SBOM in /app/sbom.cdx.json.
# The build and deps stages run on the build machine's platform (BUILDPLATFORM); the final stage
# runs no RUN, so an image for another platform (arm64) needs no emulation: it is the same app
# (JavaScript, and no dependency has native code) copied onto that platform's Node image.
# scripts/image/build.sh builds both with podman (the final stage's base named per platform,
# RUNTIME_IMAGE); test/deploy/dockerfile.test.ts runs these stages' steps without a container
# engine: keep every RUN relative to its WORKDIR.
ARG NODE_IMAGE=node:26-bookworm-slim
ARG RUNTIME_IMAGE=${NODE_IMAGE}

# Compile TypeScript to dist/.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
# A CA file for npm behind a TLS-intercepting proxy, mounted at build time only
# (scripts/image/build.sh); empty, Node's own CAs.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

# Production dependencies only (no TypeScript, tap or other dev tools).
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS deps
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# Their CycloneDX SBOM, of the tree the image gets. npm sbom refuses a tree without the
# devDependencies that package.json names, and its --omit dev also drops production packages
# that a dev tool uses too (npm/cli#7909: lru-cache, yaml, ajv here), so the devDependencies
# leave this stage's package.json first. The folder is named as the package: npm names the
# SBOM's root component after it.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS sbom
WORKDIR /k8s-keystone-auth
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
RUN npm pkg delete devDependencies && npm sbom --omit dev --sbom-format cyclonedx --sbom-type application > sbom.cdx.json

FROM --platform=$TARGETPLATFORM ${RUNTIME_IMAGE} AS production
ENV NODE_ENV=production
ENV PATH=/app/bin:$PATH
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=sbom /k8s-keystone-auth/sbom.cdx.json ./
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY config ./config
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/app/bin/k8s-keystone-auth"]
