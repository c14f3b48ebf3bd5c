# The Exclave demo node (`node-integration/demo-node`, its own Cargo workspace). Build from the
# repository root, because the node depends on `exclave-node-integration` by path (../..) and
# that crate inherits its dependencies from the root workspace:
#   docker build -f docker/demo-node.Dockerfile -t exclave-demo-node:local .
# A cold build takes 25-40 minutes on 2 cores (85 minutes on a busy machine) and ~4 GB of target
# dir; the cache mounts keep the target dir, so a rebuild after a node change takes minutes.
# Needs BuildKit (the default since Docker 23).

FROM rust:1-bookworm AS builder
# protoc: litep2p's prost-build. wasm32v1-none: the runtime's wasm (substrate-wasm-builder).
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add wasm32v1-none
WORKDIR /src
COPY . .
WORKDIR /src/node-integration/demo-node
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/demo-target \
    CARGO_TARGET_DIR=/demo-target cargo build --release --locked \
    && install -m 0755 /demo-target/release/exclave-demo-node /usr/local/bin/exclave-demo-node

FROM debian:bookworm-slim
# curl: the compose healthcheck and the one-shot genesis-hash service use the node's RPC.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 substrate \
    && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin substrate \
    && install -d -m 0700 -o substrate -g substrate /data
COPY --from=builder /usr/local/bin/exclave-demo-node /usr/local/bin/exclave-demo-node
USER substrate
WORKDIR /data
VOLUME ["/data"]
# 30333: p2p; 9944: JSON-RPC (WebSocket and HTTP); 9615: Prometheus (--prometheus-external).
EXPOSE 30333 9944 9615
ENTRYPOINT ["exclave-demo-node"]
CMD ["--help"]
