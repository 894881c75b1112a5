# The release. The chart's appVersion is the one place it is written: the binaries (--version),
# the image's labels and the default image tag take it from there.
VERSION ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/nango-operator/Chart.yaml)
# The commit, with -dirty when the work tree has changes, and its date: a build takes its
# time from the commit, not the clock, so that one commit always gives the same bytes.
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
BUILD_DATE ?= $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG = github.com/nango-operator/nango-operator/internal/version
LDFLAGS ?= -s -w -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).commit=$(COMMIT) -X $(VERSION_PKG).date=$(BUILD_DATE)

# Image URL to use all building/pushing image targets
IMG ?= ghcr.io/nango-operator/nango-operator:$(VERSION)

# Tool and test versions. Every tool is built from the Go module proxy into ./bin, once per
# version: the proxy is the only network `make test` needs.
ENVTEST_K8S_VERSION ?= 1.37.2
ENVTEST_ETCD_VERSION ?= 3.7.3
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.0
GOLANGCI_LINT_VERSION ?= v2.15.0
HELM_VERSION ?= v3.22.0
# The Kubernetes minor version helm assumes when no cluster is asked (`helm template`, lint):
# helm's own release build stamps that of its k8s.io/client-go (0.37 for v3.22.0), `go install`
# does not and leaves 1.20, below the chart's kubeVersion. Stamped the same way here.
HELM_K8S_MINOR ?= 37
CYCLONEDX_GOMOD_VERSION ?= v1.10.0
HELM_DOCS_VERSION ?= v1.14.2
# promtool tests the chart's alert rules; it comes with Prometheus, whose Go module versions
# are v0.<minor>.<patch> for Prometheus 3.<minor>.<patch>.
PROMTOOL_VERSION ?= v0.316.0

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

##@ General

.PHONY: all
all: build

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRDs, the ClusterRole and docs/api.md from the Go markers and comments.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd paths="./api/..." paths="./internal/controller/..." output:crd:artifacts:config=config/crd/bases
	go run ./hack/apidocs config/crd/bases docs/api.md

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods from the API types.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify-generated
verify-generated: controller-gen ## Fail when the generated CRD, RBAC, DeepCopy files or docs/api.md are stale.
	hack/verify-generated.sh "$(MAKE)"

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	"$(GOLANGCI_LINT)" run

.PHONY: test-alerts
test-alerts: promtool ## Check the chart's alert rules and run their tests (promtool test rules).
	"$(PROMTOOL)" check rules "$(CHART_DIR)/files/alerts.yaml"
	"$(PROMTOOL)" test rules "$(CHART_DIR)/files/alerts_test.yaml"

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and fix what it can.
	"$(GOLANGCI_LINT)" run --fix

.PHONY: test
test: verify-generated vet lint test-alerts setup-envtest setup-postgres helm helm-docs kustomize ## Check generated files, vet, lint, the chart's alert rules, then run every test against a real API server and PostgreSQL.
	KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS)" HELM_DOCS="$(HELM_DOCS)" go test ./... -count=1 -timeout 30m -coverprofile cover.out
	$(MAKE) fuzz

# How long `make test` fuzzes each of the webhook parser and verifier (internal/nango) and
# the receiver's request path; run longer by hand with `make fuzz FUZZTIME=10m`.
FUZZTIME ?= 10s

.PHONY: fuzz
fuzz: ## Fuzz Nango's webhook parser and verifier, then the webhook receiver's request path, each for FUZZTIME.
	go test ./internal/nango -run '^$$' -fuzz FuzzParseWebhook -fuzztime $(FUZZTIME)
	go test ./internal/receiver -run '^$$' -fuzz FuzzReceive -fuzztime $(FUZZTIME)

.PHONY: demo
demo: setup-envtest ## Run the operator on a local API server against the Nango emulator, syncing into SQLite. DEMO_FLAGS=-non-interactive stops at the end.
	go run ./hack/demo $(DEMO_FLAGS)

.PHONY: test-e2e
test-e2e: setup-envtest ## Run only the end-to-end tests (the manager binary against a real API server).
	KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS)" go test ./test/e2e/... -count=1 -v -ginkgo.v

##@ Build

.PHONY: build
build: manifests generate fmt vet build-manager ## Regenerate, check, then build the manager binary.

# Where build-manager writes the manager.
MANAGER_BIN ?= bin/manager

.PHONY: build-manager
build-manager: ## Build the manager into MANAGER_BIN (bin/manager), stamped with VERSION, COMMIT and BUILD_DATE.
	go build -trimpath -ldflags '$(LDFLAGS)' -o "$(MANAGER_BIN)" ./cmd

# Where build-plugin writes the kubectl plugin; kubectl runs it as `kubectl nango` when it
# is on PATH.
PLUGIN_BIN ?= bin/kubectl-nango

.PHONY: build-plugin
build-plugin: ## Build the kubectl plugin into PLUGIN_BIN (bin/kubectl-nango), stamped like the manager.
	go build -trimpath -ldflags '$(LDFLAGS)' -o "$(PLUGIN_BIN)" ./cmd/kubectl-nango

.PHONY: print-%
print-%: ## Print a variable of this Makefile, e.g. make -s print-VERSION.
	@echo '$($*)'

.PHONY: run
run: manifests generate fmt vet ## Run the manager from your host against the cluster in your kubeconfig.
	go run ./cmd

# `make image` builds the manager's OCI image as data (internal/image, with
# go-containerregistry), without a container engine: one static binary per platform, a base
# layer of passwd, group, the CA bundle and /tmp, labels, user 65532. One commit gives one
# digest. It writes an OCI image layout and the same as a tar file under IMAGE_DIR.
PLATFORMS ?= linux/amd64 linux/arm64
IMAGE_DIR ?= $(CURDIR)/bin/image
CA_CERTIFICATES ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: image
image: ## Build the manager image for PLATFORMS without Docker: IMAGE_DIR/oci (an OCI image layout) and IMAGE_DIR/nango-operator.tar.
	@mkdir -p "$(IMAGE_DIR)/binaries"
	@binaries=; for platform in $(PLATFORMS); do \
		os=$${platform%%/*}; arch=$${platform#*/}; out="$(IMAGE_DIR)/binaries/manager-$$os-$$arch"; \
		echo "building $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' -o "$$out" ./cmd; \
		binaries="$$binaries --binary $$platform=$$out"; \
	done; \
	go run ./hack/image build $$binaries --ca-certificates "$(CA_CERTIFICATES)" \
		--version "$(VERSION)" --revision "$(COMMIT)" --source-date-epoch "$(SOURCE_DATE_EPOCH)" \
		--layout "$(IMAGE_DIR)/oci" --tar "$(IMAGE_DIR)/nango-operator.tar"

.PHONY: image-push
image-push: ## Push the image `make image` built to IMG (registry/name:tag), with the credentials of `docker login`.
	go run ./hack/image push --layout "$(IMAGE_DIR)/oci" --to "$(IMG)"

# The Dockerfile is for those who build with Docker: these machines have no Docker engine, so
# `make image` is the build that is tested.
CONTAINER_TOOL ?= docker

.PHONY: docker-build
docker-build: ## Build the manager image.
	$(CONTAINER_TOOL) build -t ${IMG} --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg BUILD_DATE=$(BUILD_DATE) .

.PHONY: docker-push
docker-push: ## Push the manager image.
	$(CONTAINER_TOOL) push ${IMG}

.PHONY: build-installer
build-installer: manifests generate kustomize ## Write dist/install.yaml: the CRD and everything needed to deploy the manager.
	mkdir -p dist
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default > dist/install.yaml

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install the CRD into the cluster in your kubeconfig.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" apply -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRD from the cluster. Call with ignore-not-found=true to ignore missing resources.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the manager to the cluster in your kubeconfig.
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" apply -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the manager from the cluster. Call with ignore-not-found=true to ignore missing resources.
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

##@ Helm

CHART_DIR ?= charts/nango-operator

.PHONY: helm-crds
helm-crds: manifests ## Copy the generated CRD (config/crd/bases) into the chart's templates; test/e2e fails on drift.
	hack/helm-sync.sh crds "$(CHART_DIR)"

.PHONY: helm-rbac
helm-rbac: manifests ## Copy the manager's generated ClusterRole rules (config/rbac/role.yaml) into the chart; test/e2e fails on drift.
	hack/helm-sync.sh rbac "$(CHART_DIR)"

.PHONY: helm-readme
helm-readme: helm-docs ## Regenerate the chart README's values table from the comments of values.yaml (README.md.gotmpl); test/e2e fails when it is stale.
	"$(HELM_DOCS)" --chart-search-root "$(CHART_DIR)" --log-level warning

.PHONY: helm-lint
helm-lint: helm ## Lint the chart strictly, with default values, with every optional feature on, and with SQLite persistence.
	"$(HELM)" lint --strict "$(CHART_DIR)"
	"$(HELM)" lint --strict "$(CHART_DIR)" -f "$(CHART_DIR)/ci/all-features-values.yaml"
	"$(HELM)" lint --strict "$(CHART_DIR)" -f "$(CHART_DIR)/ci/sqlite-persistence-values.yaml"

.PHONY: helm-package
helm-package: helm-crds helm-rbac helm-lint ## Package the chart into dist/.
	mkdir -p dist
	"$(HELM)" package "$(CHART_DIR)" -d dist

##@ Release

# Where `make release` writes a release's artefacts.
RELEASE_DIR ?= $(CURDIR)/dist

# The kubectl plugin's platforms in a release, as hack/krew/nango.yaml lists them: pure Go,
# cross-compiled without cgo, one kubectl-nango_<version>_<os>_<arch>.tar.gz each.
PLUGIN_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
KREW_TEMPLATE = hack/krew/nango.yaml

.PHONY: release
release: manifests helm cyclonedx-gomod ## Write a release into RELEASE_DIR (dist/): the image, the chart package, the CRD bundle, the manager's SBOM, the kubectl plugin's archives and krew manifest, SHA256SUMS.
	rm -rf "$(RELEASE_DIR)"
	mkdir -p "$(RELEASE_DIR)"
	$(MAKE) --no-print-directory image IMAGE_DIR="$(RELEASE_DIR)/image"
	$(MAKE) --no-print-directory release-plugin
	"$(HELM)" package "$(CHART_DIR)" -d "$(RELEASE_DIR)" >/dev/null
	cat config/crd/bases/*.yaml > "$(RELEASE_DIR)/nango-operator-crds.yaml"
	@# From the shipped binary's own build information: the modules it was linked with.
	"$(CYCLONEDX_GOMOD)" bin -json -std -version "v$(VERSION)" -output "$(RELEASE_DIR)/nango-operator-manager.cdx.json" \
		"$(RELEASE_DIR)/image/binaries/manager-$(subst /,-,$(firstword $(PLATFORMS)))"
	cd "$(RELEASE_DIR)" && sha256sum image/nango-operator.tar nango-operator-*.tgz nango-operator-crds.yaml nango-operator-manager.cdx.json \
		kubectl-nango_*.tar.gz > SHA256SUMS
	@echo "release $(VERSION) in $(RELEASE_DIR)"

# The archives hold the binary alone, with the commit's time, root's ids and sorted entries
# (gzip -n leaves out its own name and time): one commit gives the same bytes. The krew
# manifest is the template with the version and each archive's SHA-256 filled in.
.PHONY: release-plugin
release-plugin: ## Build the kubectl plugin for PLUGIN_PLATFORMS into RELEASE_DIR/kubectl-nango_<version>_<os>_<arch>.tar.gz, and RELEASE_DIR/kubectl-nango.krew.yaml.
	@mkdir -p "$(RELEASE_DIR)"
	sed -e 's/$${VERSION}/$(VERSION)/g' "$(KREW_TEMPLATE)" > "$(RELEASE_DIR)/kubectl-nango.krew.yaml"
	@set -e; for platform in $(PLUGIN_PLATFORMS); do \
		os=$${platform%/*}; arch=$${platform#*/}; name="kubectl-nango_$(VERSION)_$${os}_$${arch}"; \
		echo "kubectl-nango $$os/$$arch"; \
		rm -rf "$(RELEASE_DIR)/$$name"; mkdir -p "$(RELEASE_DIR)/$$name"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' \
			-o "$(RELEASE_DIR)/$$name/kubectl-nango" ./cmd/kubectl-nango; \
		tar --sort=name --owner=0 --group=0 --numeric-owner --mode=u=rwx,go=rx --mtime=@$(SOURCE_DATE_EPOCH) \
			-C "$(RELEASE_DIR)/$$name" -cf - kubectl-nango | gzip -9n > "$(RELEASE_DIR)/$$name.tar.gz"; \
		rm -rf "$(RELEASE_DIR)/$$name"; \
		sum=$$(sha256sum "$(RELEASE_DIR)/$$name.tar.gz" | cut -d' ' -f1); \
		placeholder=$$(echo "SHA256_$${os}_$${arch}" | tr a-z A-Z); \
		sed -i -e "s/\$${$$placeholder}/$$sum/" "$(RELEASE_DIR)/kubectl-nango.krew.yaml"; \
	done

##@ Benchmarks

# BENCH_RECORDS overrides the 1,000,000 records of the throughput benchmark; BENCH_OUT names a
# file for its table. `make test` runs short smoke versions of everything in test/bench.
BENCH_RECORDS ?= 1000000
BENCH_OUT ?= $(CURDIR)/bench-results.md

.PHONY: bench
bench: setup-envtest setup-postgres ## Run the full benchmarks: throughput of a 1,000,000-record sync into each sink (PostgreSQL, SQLite, Kafka, HTTP) against its limits, 10,000 NangoSyncs, wake latency while busy, the shared rate limit, a NangoSyncSet over 5,000 connections × 2 models, auth webhook → NangoSync latency over 200 connections.
	NANGO_BENCH_FULL=1 NANGO_BENCH_RECORDS=$(BENCH_RECORDS) NANGO_BENCH_OUT="$(BENCH_OUT)" KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS)" \
		go test ./test/bench/ -run 'TestThroughput|TestHistoryThroughput|TestIncrementalSync|TestScale|TestWakeLatency|TestSharedRateLimit|TestSyncSet' -count=1 -v -timeout 3h

.PHONY: soak
soak: setup-envtest setup-postgres ## Run the full soaks: 20 SIGKILLs during a 200,000-record sync (PostgreSQL, Kafka on kfake, HTTP), Nango faults, a 30 s PostgreSQL outage.
	NANGO_SOAK_FULL=1 KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS)" \
		go test ./test/bench/ -run 'TestSoak' -count=1 -v -timeout 1h

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

GOOS ?= $(shell go env GOOS)
GOARCH ?= $(shell go env GOARCH)

## Tool Binaries
KUBECTL ?= kubectl
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
HELM ?= $(LOCALBIN)/helm
CYCLONEDX_GOMOD ?= $(LOCALBIN)/cyclonedx-gomod
PROMTOOL ?= $(LOCALBIN)/promtool
HELM_DOCS ?= $(LOCALBIN)/helm-docs

# KUBEBUILDER_ASSETS holds etcd, kube-apiserver and kubectl for envtest. A value from the
# environment is honoured; by default they are built once per version into a per-user cache
# (as setup-envtest lays it out) and linked here.
KUBEBUILDER_ASSETS ?= $(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION)-$(GOOS)-$(GOARCH)
export KUBEBUILDER_ASSETS

.PHONY: setup-envtest
setup-envtest: ## Build (or reuse) the envtest binaries etcd, kube-apiserver and kubectl.
	@hack/envtest-binaries.sh "$(ENVTEST_K8S_VERSION)" "$(ENVTEST_ETCD_VERSION)" "$(KUBEBUILDER_ASSETS)"

.PHONY: setup-postgres
setup-postgres: ## Install Debian's PostgreSQL server binaries when missing; tests run throwaway servers of their own.
	@hack/ensure-postgres.sh

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Download controller-gen locally if necessary.
$(CONTROLLER_GEN): $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Download kustomize locally if necessary.
$(KUSTOMIZE): $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: helm
helm: $(HELM) ## Build helm locally if necessary.
$(HELM): $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION),-ldflags '-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_K8S_MINOR) -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_K8S_MINOR)',-k8s1.$(HELM_K8S_MINOR))

.PHONY: promtool
promtool: $(PROMTOOL) ## Build promtool locally if necessary.
$(PROMTOOL): $(LOCALBIN)
	$(call go-install-tool,$(PROMTOOL),github.com/prometheus/prometheus/cmd/promtool,$(PROMTOOL_VERSION))

.PHONY: helm-docs
helm-docs: $(HELM_DOCS) ## Build helm-docs (the chart README's values table) locally if necessary.
$(HELM_DOCS): $(LOCALBIN)
	$(call go-install-tool,$(HELM_DOCS),github.com/norwoodj/helm-docs/cmd/helm-docs,$(HELM_DOCS_VERSION))

.PHONY: cyclonedx-gomod
cyclonedx-gomod: $(CYCLONEDX_GOMOD) ## Build cyclonedx-gomod (the SBOM generator) locally if necessary.
$(CYCLONEDX_GOMOD): $(LOCALBIN)
	$(call go-install-tool,$(CYCLONEDX_GOMOD),github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod,$(CYCLONEDX_GOMOD_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Download golangci-lint locally if necessary.
$(GOLANGCI_LINT): $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
# $4 - optional flags for go install (such as -ldflags)
# $5 - optional suffix of the kept binary's name, telling builds with other flags apart
define go-install-tool
@[ -f "$(1)-$(3)$(5)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$(1)-$(3)$(5)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" go install $(4) $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)$(5)" ;\
} ;\
ln -sf "$$(realpath "$(1)-$(3)$(5)")" "$(1)"
endef
