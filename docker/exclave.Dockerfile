# The Exclave signer (`exclave`). Build from the repository root:
#   docker build -f docker/exclave.Dockerfile -t exclave-signer:local .
# The etcd and TiKV claim stores are always compiled in (signer/Cargo.toml enables the claims
# crate's `etcd` and `tikv` features; the `exclave` package has no features of its own to pass).
# Needs BuildKit (the default since Docker 23) for the cache mounts.

FROM rust:1-bookworm AS builder
# No protoc needed: etcd-client's generated protobuf code is checked in (vendor/etcd-client).
WORKDIR /src
COPY . .
# The target dir is a cache mount (kept across builds), so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p exclave \
    && install -m 0755 target/release/exclave /usr/local/bin/exclave

FROM debian:bookworm-slim
# curl: the compose healthcheck asks /ready on the metrics port.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 exclave \
    && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin exclave \
    && install -d -m 0700 -o exclave -g exclave /data
COPY --from=builder /usr/local/bin/exclave /usr/local/bin/exclave
USER exclave
WORKDIR /data
# Keystore, signing log (and the embedded claim store, if used): back them up together.
VOLUME ["/data"]
# 9955: JSON-RPC over mutual TLS; 9956: metrics, /health, /ready (plain HTTP: private network only).
EXPOSE 9955 9956
ENTRYPOINT ["exclave"]
CMD ["serve", "--config", "/data/signer.toml"]
