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

package pgtest

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
)

// Dump answers the whole database at dsn, schema and data, as pg_dump (from the same
// PostgreSQL installation as the server) writes it. Tests read it to prove what a database
// does not hold anywhere.
func Dump(tb testing.TB, dsn string) string {
	tb.Helper()
	binDir, err := findBinDir()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "pg_dump"), "--no-owner", "--dbname="+dsn)
	cmd.Env = []string{"PGCONNECT_TIMEOUT=10"} // nothing from the caller's environment or home
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = string(exit.Stderr)
		}
		tb.Fatalf("pgtest: pg_dump: %v: %s", err, stderr)
	}
	return string(out)
}
