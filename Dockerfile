# Lepton in a container: a build stage with the Rust toolchain, and a small
# Debian runtime that runs `lepton serve` as an unprivileged user.
#
#   docker build -t lepton .
#   docker run -p 8080:8080 -v lepton-data:/var/lib/lepton lepton
#
# The image serves the demo bot in /srv/bot; mount your own bot folder there
# (writable, if agents add examples from the console). See docs/deployment.md.

FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin lepton \
    && cp target/release/lepton /usr/local/bin/lepton

FROM debian:bookworm-slim
# ca-certificates for HTTPS actions, Telegram, Discord and rediss://; curl for
# the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/lepton --create-home lepton
COPY --from=build /usr/local/bin/lepton /usr/local/bin/lepton
COPY --chown=lepton:lepton demo /srv/bot

# Listen on every interface inside the container; the model, the index, the
# embedded store and the accounts file go to the volume.
ENV LEPTON_SERVER_HOST=0.0.0.0 \
    LEPTON_SERVER_PORT=8080 \
    LEPTON_SERVER_BOT=/srv/bot \
    LEPTON_SERVER_DATA_DIR=/var/lib/lepton \
    LEPTON_SERVER_WATCH=false \
    LEPTON_LOG_FORMAT=json
USER lepton
WORKDIR /var/lib/lepton
VOLUME /var/lib/lepton
EXPOSE 8080
# The first start trains the model and builds the index, which takes a while
# for a large bot; start-period covers it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${LEPTON_SERVER_PORT}/healthz" || exit 1
# SIGTERM makes lepton finish the turns in flight and flush the store;
# `docker stop --time` must exceed server.shutdown_timeout_seconds (10 s by default).
STOPSIGNAL SIGTERM
ENTRYPOINT ["lepton"]
CMD ["serve"]
