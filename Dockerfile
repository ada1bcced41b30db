# syntax=docker/dockerfile:1
#
# The Prism gateway as a container image.
#
#   docker build -t prism .
#   docker run --rm -p 8080:8080 prism                    # embedded demo default
#   docker run --rm -p 8080:8080 -v "$PWD/prism.toml:/etc/prism/prism.toml:ro" \
#       prism serve --config /etc/prism/prism.toml        # your own configuration
#
# Listen address: `prism serve` listens where the config file's `listen` says, or on
# 127.0.0.1:8080 (DEFAULT_LISTEN) when it is not set and always for the embedded default, unless
# `--listen` / PRISM_LISTEN overrides it. Loopback is unreachable through `-p`, so the default
# CMD passes `--listen 0.0.0.0:8080`. A CMD that names `--config` instead uses the file's
# `listen` (deploy/prism.toml and the Helm chart's config say 0.0.0.0:8080). PRISM_LISTEN is
# deliberately not set as an ENV here: it would silently override every config file's `listen`.
#
# Stopping: on SIGTERM Prism stops accepting, lets open streams finish for
# `timeouts.shutdown_grace_ms` (30 s by default) and exits. `docker stop` waits only 10 s before
# SIGKILL, so use `docker stop -t 35` (or compose's `stop_grace_period`) to let streams drain.

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# The release profile keeps line tables (debug = 1) for profiling; the image does not need them.
# Set to "none" to keep them.
ARG STRIP=debuginfo
ENV CARGO_PROFILE_RELEASE_STRIP=${STRIP} \
    CARGO_TERM_COLOR=never
# The whole workspace is needed: `--locked` resolves Cargo.lock against every member's manifest,
# and prism-simulator embeds files from fixtures/. .dockerignore keeps target/, .git and docs out.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p prism \
    && install -D -m 0755 target/release/prism /out/prism

# distroless/cc: glibc and libgcc (what a Rust binary links dynamically), CA certificates, no
# shell. TLS is rustls with bundled roots, so no OpenSSL is needed. `:nonroot` runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/prism /usr/local/bin/prism
# Numeric, so Kubernetes' runAsNonRoot can verify it without resolving a user name.
USER 65532:65532
EXPOSE 8080
# No HEALTHCHECK: distroless has no shell, curl or wget to run one, and the prism binary has no
# probe subcommand. Orchestrators probe over HTTP instead: GET /health (liveness) and GET /ready
# (readiness; 503 while shutting down) — see deploy/helm/prism/templates/deployment.yaml.
ENTRYPOINT ["/usr/local/bin/prism"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
