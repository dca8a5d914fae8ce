# ako's image: one static binary (musl), run as a non-root user on an empty base.
#
#   docker build -t ako:0.1.0 .            # the tag the Helm chart's default values point at (image.repository ako,
#                                          # tag = the chart's appVersion)
#   docker run --rm ako:0.1.0 --help
#
# Stage 1 builds with the Rust toolchain on Alpine, whose default target (x86_64-unknown-linux-musl) links
# statically. Stage 2 holds only the binary and the CA roots (for an Avi controller whose CA is not given).
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev gcc make ca-certificates
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Cargo.toml declares the benches, so the manifest needs their files even for `--bin ako`.
COPY benches benches
COPY crates crates
COPY src src
# Without the embedded Avi controller emulator (the `emulator` feature): a production image talks to a real one.
RUN cargo build --release --locked --no-default-features --bin ako \
 && strip target/release/ako \
 && ! ldd target/release/ako 2>/dev/null | grep -q '=>'

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/release/ako /ako
# 65532: the conventional "nonroot" user; the chart's podSecurityContext asks for the same.
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/ako"]
CMD ["run"]
