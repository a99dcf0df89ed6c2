# Build: docker build -t ipacct_exporter .
# Run:   docker run --net=host --cap-add=NET_ADMIN ipacct_exporter --no-collector.iptables
# (The iptables-legacy collector runs iptables-legacy, which does not get the
# exporter's file capabilities: for it, add --cap-add=NET_RAW --user=0.)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The release build: the version from the VERSION file, the revision and
# branch from git when the context holds .git (see Makefile).
RUN make build BIN=/ipacct_exporter

FROM debian:bookworm-slim
# iptables-legacy for the iptables collector; nothing else is needed for
# nftables, which the exporter reads over netlink. setcap gives the binary
# CAP_NET_ADMIN, so that it runs as nobody. /run/ipacct_exporter holds its
# claim on the table it manages (--config.file); mount the host's there to
# share claims with exporters outside the container.
COPY --from=build /ipacct_exporter /usr/local/bin/ipacct_exporter
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables libcap2-bin \
 && setcap cap_net_admin+ep /usr/local/bin/ipacct_exporter \
 && install -d -m 0700 -o 65534 -g 65534 /run/ipacct_exporter \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /var/lib/ipacct_exporter && chown 65534:65534 /var/lib/ipacct_exporter
# The state file: what vanished and zeroed counters counted, kept across
# container restarts (see docs/counters.md).
VOLUME /var/lib/ipacct_exporter
USER 65534:65534
EXPOSE 10427
ENTRYPOINT ["/usr/local/bin/ipacct_exporter", "--state.file=/var/lib/ipacct_exporter/state.json"]
