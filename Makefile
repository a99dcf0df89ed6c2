# The release build: the binary with its version, revision, branch, build
# user and date set, as Prometheus' promu sets them, for --version and
# ipacct_exporter_build_info. A plain `go build` reports what Go embeds
# instead (internal/buildinfo). The Dockerfile builds with this.
#
#   make build                  ./ipacct_exporter
#   make build BIN=/usr/local/bin/ipacct_exporter
#
# VERSION is the release. In a git checkout, git gives the revision
# ("-modified" when the tree has changes) and the branch.

BIN        ?= ipacct_exporter
VERSION    ?= $(shell cat VERSION)
REVISION   ?= $(shell git describe --always --abbrev=40 --dirty=-modified --exclude='*' 2>/dev/null)
BRANCH     ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
BUILD_USER ?= $(shell id -un)@$(shell hostname)
BUILD_DATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)

version := github.com/prometheus/common/version
LDFLAGS := -s -w \
	-X $(version).Version=$(VERSION) \
	-X $(version).Revision=$(REVISION) \
	-X $(version).Branch=$(BRANCH) \
	-X $(version).BuildUser=$(BUILD_USER) \
	-X $(version).BuildDate=$(BUILD_DATE)

.PHONY: build
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o '$(BIN)' .
