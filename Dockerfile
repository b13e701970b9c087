# The BigBrotr image: the `bigbrotr` binary and the implementations/ folder,
# run as a non-root user. Built by `docker compose --profile services build`
# (see docker-compose.yml); the services pick their work with `run <service>`.
#
# Stage 1 builds the release binary with the toolchain the workspace asks
# for; stage 2 is a slim Debian with only the binary, the implementations and
# the CA certificates (relays and NIP-11 documents over TLS).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p bigbrotr \
 && cp target/release/bigbrotr /usr/local/bin/bigbrotr

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin bigbrotr
WORKDIR /app
COPY --from=build /usr/local/bin/bigbrotr /usr/local/bin/bigbrotr
COPY implementations/ /app/implementations/
USER bigbrotr
# The implementations are found under BIGBROTR_ROOT; the runtime's endpoint
# (/health, /status, /metrics) listens on every interface of the container so
# that Prometheus, in the same Compose network, can scrape it.
ENV BIGBROTR_ROOT=/app \
    BIGBROTR_RUNTIME__HTTP__LISTEN=0.0.0.0:9109
EXPOSE 9109
ENTRYPOINT ["bigbrotr"]
CMD ["run", "monitor", "finder", "synchronizer"]
