# Build the manager binary
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
# The release stamp --version prints; `make docker-build` passes the Makefile's.
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown

WORKDIR /workspace
# Copy the Go module manifests first and download the modules, so that the layer is cached
# until they change.
COPY go.mod go.mod
COPY go.sum go.sum
RUN go mod download

# Copy the Go source (see .dockerignore for what is left out)
COPY cmd/ cmd/
COPY api/ api/
COPY internal/ internal/

# GOARCH has no default, so the binary is built for the platform of the build's host
# unless the build asks for another (docker buildx --platform). CGO is off: the SQLite
# sink uses modernc.org/sqlite, which is pure Go.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath \
    -ldflags="-s -w -X github.com/nango-operator/nango-operator/internal/version.version=${VERSION} -X github.com/nango-operator/nango-operator/internal/version.commit=${COMMIT} -X github.com/nango-operator/nango-operator/internal/version.date=${BUILD_DATE}" \
    -o manager ./cmd

# Use distroless as minimal base image to package the manager binary
# Refer to https://github.com/GoogleContainerTools/distroless for more details
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532

ENTRYPOINT ["/manager"]
