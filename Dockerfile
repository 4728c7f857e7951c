# syntax=docker/dockerfile:1
# k8s-keystone-auth and client-keystone-auth on the current Node.js LTS.
#   docker build -t registry.example.com/k8s-keystone-auth:0.1.0 .
# Runs as uid/gid 65532 (numeric, so kubelet can verify runAsNonRoot), needs no writable path
# (readOnlyRootFilesystem: true works), and holds production dependencies only.
# test/deploy/dockerfile.test.ts runs these stages' steps without a container engine: keep every
# RUN relative to its WORKDIR.
ARG NODE_IMAGE=node:26-bookworm-slim

# Compile TypeScript to dist/.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

# Production dependencies only (no TypeScript, tap or other dev tools).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS production
ENV NODE_ENV=production
ENV PATH=/app/bin:$PATH
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY config ./config
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/app/bin/k8s-keystone-auth"]
