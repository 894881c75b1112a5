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

package controller

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
)

// policyError says a NangoSync asks for something the cluster admin's policy (the
// manager's flags) does not allow. Retrying cannot help until the spec or the policy
// changes; nothing the spec names was read or contacted.
type policyError struct {
	// reason is the condition reason, one of the API's *Reason constants.
	reason string
	// message names the rule and what to change.
	message string
}

func (e *policyError) Error() string { return e.message }

// nangoURLs are the Nango API URLs NangoSyncs may name in spec.nango.url: the secret key
// of a NangoSync is sent to its Nango URL, so a NangoSync that may name any URL could send
// any Secret of its namespace anywhere.
type nangoURLs []*url.URL

// parseNangoURLs parses the allowed Nango URLs: Nango URLs (nango.ParseBaseURL) without
// user information, query or fragment, which an allow-list entry has no use for.
func parseNangoURLs(raw []string) (nangoURLs, error) {
	allowed := make(nangoURLs, 0, len(raw))
	for _, s := range raw {
		u, err := nango.ParseBaseURL(s)
		if err != nil {
			return nil, fmt.Errorf("allowed Nango URL %w", err)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("allowed Nango URL %q must have no user, query or fragment", s)
		}
		allowed = append(allowed, u)
	}
	return allowed, nil
}

// allows reports whether raw is one of the allowed URLs or below one: the same scheme
// (so https never becomes http), host and port, and a path at or under the allowed path,
// segment by segment.
func (a nangoURLs) allows(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		return false
	}
	for _, allowed := range a {
		if u.Scheme == allowed.Scheme && strings.EqualFold(u.Hostname(), allowed.Hostname()) &&
			portOf(u) == portOf(allowed) && underPath(u.Path, allowed.Path) {
			return true
		}
	}
	return false
}

// String lists the allowed URLs for messages.
func (a nangoURLs) String() string {
	s := make([]string, len(a))
	for i, u := range a {
		s[i] = u.String()
	}
	return strings.Join(s, ", ")
}

func portOf(u *url.URL) string {
	if port := u.Port(); port != "" {
		return port
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

func underPath(path, allowed string) bool {
	allowed = strings.TrimSuffix(allowed, "/")
	return allowed == "" || path == allowed || strings.HasPrefix(path, allowed+"/")
}

// sqliteDirMode keeps one namespace's SQLite files from the eyes of other users of the
// volume; the operator is the only process that opens them.
const sqliteDirMode = 0o700

// prepareSQLitePath checks an SQLite sink's path against the admin's --sqlite-root: with a
// root, each namespace's files live under <root>/<namespace>/, which is created when
// missing, and any other path is refused. Without a root every path is allowed.
func (o Options) prepareSQLitePath(namespace string, spec syncv1alpha1.SinkSpec) error {
	lite := spec.SQLite
	if o.SQLiteRoot == "" || lite == nil {
		return nil
	}
	dir := filepath.Join(o.SQLiteRoot, namespace)
	if path := filepath.Clean(lite.Path); !strings.HasPrefix(path, dir+string(filepath.Separator)) {
		return &policyError{reason: syncv1alpha1.SinkPathNotAllowedReason, message: fmt.Sprintf(
			"spec.sink.sqlite.path %s is outside %s, where the operator keeps the SQLite files of namespace %s "+
				"(its --sqlite-root is %s): put the file under %s",
			lite.Path, dir+"/", namespace, o.SQLiteRoot, dir+"/")}
	}
	if err := os.MkdirAll(dir, sqliteDirMode); err != nil {
		return &sinkError{fmt.Errorf("create the SQLite directory of namespace %s: %w", namespace, err)}
	}
	return nil
}
