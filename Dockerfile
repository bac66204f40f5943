# syntax=docker/dockerfile:1
# The secretsync operator image: docker build -t secretsync:dev .
#
# Three stages: build compiles TypeScript with the dev dependencies, deps
# installs the production dependencies only, and runtime, a distroless Node.js
# 20 image with no shell or package manager, gets just the compiled code, those
# dependencies, bin/ and crds/. It runs as the numeric non-root user 65532 and
# writes nothing outside /tmp (an emptyDir in the chart) and the local store's
# volume, so it works with a read-only root filesystem.
# test/e2e/image.test.ts assembles the runtime stage's files from this file's
# COPY and RUN lines without Docker and runs them.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src/ src/
RUN npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM gcr.io/distroless/nodejs24-debian12:nonroot AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="secretsync" \
      org.opencontainers.image.description="A Kubernetes operator that syncs secret values from encrypted stores into native Secrets" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs24-debian12:nonroot"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY package.json package-lock.json ./
COPY bin/ ./bin/
COPY crds/ ./crds/
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node", "bin/secretsync.js", "run"]
