#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed, for
# the throwaway servers the tests run (internal/testutil/pgtest). When they are missing it
# installs Debian's postgresql package. It never starts, stops or configures a cluster: the
# tests run servers of their own in temporary directories on free ports, and never use the
# machine's. (Debian's package may create and start its default cluster; that is left be.)
#
# Usage: hack/ensure-postgres.sh        (make test runs it)
# Fast and silent when the binaries are there; exits non-zero, saying why, when it cannot
# install them.
set -euo pipefail

say() { echo "ensure-postgres: $*" >&2; }

# has_server_binaries answers whether dir holds what pgtest runs.
has_server_binaries() {
	local dir=$1 b
	for b in initdb pg_ctl postgres; do [ -x "$dir/$b" ] || return 1; done
}

installed() {
	if [ -n "${PGTEST_BIN_DIR:-}" ] && has_server_binaries "$PGTEST_BIN_DIR"; then
		return 0
	fi
	local initdb
	for initdb in /usr/lib/postgresql/*/bin/initdb; do
		has_server_binaries "${initdb%/*}" && return 0
	done
	return 1
}

if installed; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	say "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin, and no apt-get to install them."
	say "Install PostgreSQL (initdb, pg_ctl, postgres) and set PGTEST_BIN_DIR to its bin directory."
	exit 1
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		say "installing Debian's postgresql package needs root, and sudo is not available."
		say "Run as root: apt-get update && apt-get install -y --no-install-recommends postgresql"
		exit 1
	fi
	as_root=(sudo)
fi

say "PostgreSQL server binaries missing: installing Debian's postgresql package"
if ! "${as_root[@]}" apt-get update -qq; then
	say "apt-get update failed"
	exit 1
fi
if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends postgresql >&2; then
	say "apt-get install postgresql failed"
	exit 1
fi

if ! installed; then
	say "postgresql installed, yet no initdb, pg_ctl and postgres in /usr/lib/postgresql/*/bin"
	exit 1
fi
# Tests run as root hand the server to this user: PostgreSQL refuses to run as root.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
	say "postgresql installed, yet there is no 'postgres' user to run test servers as"
	exit 1
fi
say "PostgreSQL server binaries installed in $(dirname /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)"
