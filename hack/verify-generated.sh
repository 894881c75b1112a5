#!/usr/bin/env bash
# Fails when the generated files (CRDs, RBAC, DeepCopy, docs/api.md) do not match what the Go markers
# generate. It regenerates them in place, so after a failure the tree holds the fresh files
# to review and commit. It compares checksums rather than asking git, so it works the same
# in a clean clone and in a work tree with uncommitted edits.
set -euo pipefail
make=${1:-make}

generated() {
	find config/crd/bases config/rbac/role.yaml api docs/api.md -type f \( -name '*.yaml' -o -name 'zz_generated.*.go' -o -name api.md \) \
		-print0 2>/dev/null | sort -z | xargs -0 sha256sum
}

before=$(generated)
"$make" --no-print-directory manifests generate >/dev/null
after=$(generated)

if [ "$before" != "$after" ]; then
	echo "Generated files were stale and have been regenerated; review and commit them:" >&2
	diff <(echo "$before") <(echo "$after") | sed -n 's/^> [0-9a-f]*  /  /p' >&2
	exit 1
fi
