# The same steps as the README's build for hosting (./x build --release), in a Rust image. Multi-stage: the runtime image
# holds only the binary and the site, runs as a non-root user, reads /logs and serves read-only.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN ./x build --release

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 carbon
COPY --from=build /src/target/release/carbon-dash /usr/local/bin/carbon-dash
COPY --from=build /src/site /srv/site
ENV CARBON_DASH_SITE_ROOT=/srv/site
# The parse cache (a restart reads only changed files); never inside the read-only logs.
ENV CARBON_DASH_CACHE_DIR=/tmp/carbon-dash-cache
USER carbon
VOLUME /logs
EXPOSE 3000
HEALTHCHECK CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3000 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ok <&3"]
CMD ["carbon-dash", "serve", "/logs", "--addr", "0.0.0.0:3000", "--public", "--read-only"]
