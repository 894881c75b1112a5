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

package postgres

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// TestConnectionURLTakesNothingFromTheOperatorsEnvironment sets every PG* variable that
// could carry the operator's own credentials or files, and checks that a tenant's URL
// that leaves those settings out gets libpq's defaults, not the operator's values.
func TestConnectionURLTakesNothingFromTheOperatorsEnvironment(t *testing.T) {
	dir := t.TempDir()
	passfile := filepath.Join(dir, "pgpass")
	if err := os.WriteFile(passfile, []byte("*:*:*:*:from-the-operators-passfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{
		"PGPASSWORD":           "the-operators-password",
		"PGPASSFILE":           passfile,
		"PGHOST":               "operator-db",
		"PGPORT":               "6543",
		"PGDATABASE":           "operator",
		"PGSSLMODE":            "disable",
		"PGSSLCERT":            filepath.Join(dir, "missing.crt"),
		"PGSSLKEY":             filepath.Join(dir, "missing.key"),
		"PGSSLROOTCERT":        filepath.Join(dir, "missing-root.crt"),
		"PGOPTIONS":            "-c statement_timeout=0",
		"PGTZ":                 "Pacific/Apia",
		"PGAPPNAME":            "operator",
		"PGTARGETSESSIONATTRS": "read-write",
		"HOME":                 dir,
	} {
		t.Setenv(name, value)
	}

	config, err := poolConfig("postgres://tenant@tenant-db/tenant", Timeouts{}.withDefaults())
	if err != nil {
		t.Fatalf("poolConfig: %v", err)
	}
	c := config.ConnConfig
	if c.Password != "" {
		t.Errorf("the tenant's connection got the password %q from the operator's environment", c.Password)
	}
	if c.Host != "tenant-db" || c.Port != 5432 || c.Database != "tenant" || c.User != "tenant" {
		t.Errorf("connection to %s@%s:%d/%s, want tenant@tenant-db:5432/tenant", c.User, c.Host, c.Port, c.Database)
	}
	if c.TLSConfig == nil {
		t.Error("sslmode is disable (from PGSSLMODE), want libpq's default prefer")
	} else if len(c.TLSConfig.Certificates) > 0 || c.TLSConfig.RootCAs != nil {
		t.Error("the tenant's connection uses the operator's client certificate or CA")
	}
	if c.ValidateConnect != nil {
		t.Error("target_session_attrs was taken from the operator's environment")
	}
	if want := map[string]string{"application_name": applicationName}; !maps.Equal(c.RuntimeParams, want) {
		t.Errorf("runtime parameters %v, want %v", c.RuntimeParams, want)
	}
}
