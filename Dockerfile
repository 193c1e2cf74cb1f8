# syntax=docker/dockerfile:1

# Build stage: a static binary (no cgo), so the final image needs no libc.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/mtproxy ./cmd/mtproxy

# Final stage: distroless static has CA certificates (middle-proxy mode
# downloads its files over HTTPS), tzdata and a nonroot user, and nothing
# else: no shell for an attacker to use.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mtproxy /usr/local/bin/mtproxy
# Docker lets unprivileged users bind ports below 1024 inside containers
# (net.ipv4.ip_unprivileged_port_start=0 since Docker 20.10).
USER nonroot:nonroot
# 443: clients. 8888: statistics (/stats, /metrics) when run with
# --http-stats -p 8888; they answer loopback only.
EXPOSE 443/tcp 8888/tcp
# The health check connects to the client port from inside the container.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
	CMD ["/usr/local/bin/mtproxy", "healthcheck", "127.0.0.1:443"]
ENTRYPOINT ["/usr/local/bin/mtproxy"]
CMD ["-H", "443"]
