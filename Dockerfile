# Build: docker build -t ipacct_exporter .
# Run:   docker run --net=host --cap-add=NET_ADMIN --cap-add=NET_RAW ipacct_exporter
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /ipacct_exporter .

FROM debian:bookworm-slim
# iptables-legacy for the iptables collector; nothing else is needed for
# nftables, which the exporter reads over netlink.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /ipacct_exporter /usr/local/bin/ipacct_exporter
EXPOSE 10427
ENTRYPOINT ["/usr/local/bin/ipacct_exporter"]
