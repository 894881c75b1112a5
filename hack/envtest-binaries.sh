#!/usr/bin/env bash
# Builds the envtest binaries (etcd, kube-apiserver, kubectl) from the Go module proxy.
#
# Why build instead of download: the Go module proxy is the only network these machines
# (and our CI) reach, so setup-envtest's release download is not an option. Building
# kube-apiserver takes ~9 minutes on a cold cache, so the result is kept in a per-user
# cache keyed by version, laid out like setup-envtest's:
#   ${XDG_DATA_HOME:-~/.local/share}/kubebuilder-envtest/k8s/<version>-<os>-<arch>/
# A second `make test`, or a fresh clone on the same machine, reuses it.
#
# Usage: hack/envtest-binaries.sh <k8s-version> <etcd-version> <dest-dir>
# Prints nothing but progress on stderr; leaves etcd, kube-apiserver and kubectl in dest-dir.
set -euo pipefail

k8s_version=${1:?k8s version, e.g. 1.37.2}
etcd_version=${2:?etcd version, e.g. 3.7.3}
dest=${3:?destination directory}

goos=$(go env GOOS)
goarch=$(go env GOARCH)
cache_root=${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest/k8s
cache="$cache_root/${k8s_version}-${goos}-${goarch}"
binaries=(etcd kube-apiserver kubectl)

have_all() {
	local dir=$1 b
	for b in "${binaries[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

link_into_dest() {
	mkdir -p "$dest"
	local b
	for b in "${binaries[@]}"; do ln -sf "$cache/$b" "$dest/$b"; done
}

# Binaries the user already has (KUBEBUILDER_ASSETS pointing at them) are used as they are.
if have_all "$dest"; then
	exit 0
fi

if have_all "$cache"; then
	link_into_dest
	exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0

# kube-apiserver and kubectl live in k8s.io/kubernetes, whose go.mod points every k8s.io/*
# staging module at ./staging. Outside that repository each one must be replaced by its
# published release (v0.x.y for Kubernetes v1.x.y); the list comes from the go.mod itself.
build_kubernetes() {
	echo "envtest: building kube-apiserver and kubectl v${k8s_version} (about 9 minutes on a cold cache)" >&2
	local dir="$work/kubernetes" staging_version="v0.${k8s_version#1.}"
	mkdir -p "$dir"
	local gomod
	gomod=$(go mod download -json "k8s.io/kubernetes@v${k8s_version}" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
	{
		echo "module envtest.local/kubernetes"
		echo
		echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
		echo
		echo "require k8s.io/kubernetes v${k8s_version}"
		echo
		sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9.-]*\) => ./staging/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
	} >"$dir/go.mod"
	cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
	# Stamp the version as Kubernetes' own build does, so that /version, `kubectl version`
	# and clients that check the server version (helm's kubeVersion) see v${k8s_version}.
	local ldflags="-s -w" pkg minor=${k8s_version#1.}
	minor=${minor%%.*}
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=v${k8s_version} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor} -X $pkg.gitTreeState=clean"
	done
	(cd "$dir" && go mod tidy >&2 &&
		go build -trimpath -ldflags="$ldflags" -o "$cache/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver &&
		go build -trimpath -ldflags="$ldflags" -o "$cache/kubectl" k8s.io/kubernetes/cmd/kubectl)
}

# etcd's own go.mod replaces its sibling modules with relative paths, so `go install
# module@version` refuses it; a throwaway module that requires it builds the same binary.
build_etcd() {
	echo "envtest: building etcd v${etcd_version}" >&2
	local dir="$work/etcd"
	mkdir -p "$dir"
	cat >"$dir/go.mod" <<MOD
module envtest.local/etcd

go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')

require go.etcd.io/etcd/server/v3 v${etcd_version}
MOD
	cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
	(cd "$dir" && go mod tidy >&2 &&
		go build -trimpath -ldflags='-s -w' -o "$cache/etcd" go.etcd.io/etcd/server/v3)
}

[ -x "$cache/etcd" ] || build_etcd
{ [ -x "$cache/kube-apiserver" ] && [ -x "$cache/kubectl" ]; } || build_kubernetes
have_all "$cache"
link_into_dest
