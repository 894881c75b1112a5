/*
Copyright 2026 The nango-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package version says which build of nango-operator is running. The release build stamps
// the version, commit and date with -ldflags -X (see the Makefile's LDFLAGS); a plain
// `go build` in a checkout still knows its commit and date from Go's own VCS stamp.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Package is the import path the build's -ldflags -X name these variables by.
const Package = "github.com/nango-operator/nango-operator/internal/version"

// Set at link time only (-ldflags -X), never written by the program: -X can set nothing but
// package-level string variables.
var (
	version = ""
	commit  = ""
	date    = ""
)

// Info is a build's identity.
type Info struct {
	// Version is the release (0.1.0), or "dev" for a build that was not stamped.
	Version string `json:"version"`
	// Commit is the git commit the binary was built from, with "-dirty" when the work tree had
	// changes; "unknown" when the build knew neither.
	Commit string `json:"commit"`
	// Date is when that commit was made (RFC 3339, UTC), so that one commit always gives one
	// binary; "unknown" when the build knew neither.
	Date string `json:"date"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is the binary's OS and architecture (linux/amd64).
	Platform string `json:"platform"`
}

// Get answers the running binary's Info.
func Get() Info {
	return get(version, commit, date, readVCS)
}

// get fills what the link did not stamp from Go's VCS build settings.
func get(version, commit, date string, vcs func() (revision, time string, modified bool)) Info {
	info := Info{
		Version:   version,
		Commit:    commit,
		Date:      date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" || info.Date == "" {
		revision, at, modified := vcs()
		if info.Commit == "" && revision != "" {
			info.Commit = revision
			if modified {
				info.Commit += "-dirty"
			}
		}
		if info.Date == "" {
			info.Date = at
		}
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.Date == "" {
		info.Date = "unknown"
	}
	return info
}

// readVCS answers the VCS settings `go build` records in a checkout (-buildvcs).
func readVCS() (revision, at string, modified bool) {
	build, ok := debug.ReadBuildInfo()
	if !ok {
		return "", "", false
	}
	for _, s := range build.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return revision, at, modified
}

// String is what --version prints: one line a person or a script can read.
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s, %s)", i.Version, i.Commit, i.Date, i.GoVersion, i.Platform)
}

// KeysAndValues are the Info as logr key/value pairs, for the manager's first log line.
func (i Info) KeysAndValues() []any {
	return []any{"version", i.Version, "commit", i.Commit, "date", i.Date, "goVersion", i.GoVersion, "platform", i.Platform}
}
