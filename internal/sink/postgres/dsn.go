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
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The connection URL comes from a tenant's Secret, but it is parsed in the operator's pod,
// where libpq's conventions would let it read files (passfile, servicefile, sslkey,
// sslcert, sslrootcert) and take defaults from the pod's environment (PGPASSWORD,
// PGPASSFILE, PGSERVICE, PGSSLCERT, PGOPTIONS, ...) and home directory (~/.pgpass, the
// client certificate in ~/.postgresql). None of that belongs to a tenant: a passfile entry
// or a client certificate of the operator's would be sent to whatever host the tenant
// names. So the URL is parsed here, only the parameters below are accepted, and pgx is
// given a connection string of our own in which every setting that libpq could take from
// a file or the environment is set explicitly.

// allowedParameters are the query parameters a connection URL may carry, besides the
// user, password, hosts, ports and database its other parts give:
//   - host, port, dbname, user, password: the same as the URL's parts (libpq allows both);
//     a host must be a name or an address: a Unix socket (a path) is a file of the pod;
//   - sslmode: disable, allow, prefer (the default), require, verify-ca, verify-full.
//     verify-ca and verify-full check the server's certificate against the operator
//     image's system roots: naming a CA file (sslrootcert) is not allowed;
//   - application_name: what pg_stat_activity shows, nango-operator by default;
//   - connect_timeout: whole seconds, at most MaxConnectTimeout; 0 means the default;
//   - default_query_exec_mode: pgx's, simple_protocol behind PgBouncer in transaction mode.
//
// Files (passfile, servicefile, service, sslkey, sslcert, sslrootcert, sslpassword) and
// server settings (options, search_path, statement_timeout, ...) are refused: the operator
// sets the timeouts it needs, and the sink names its schema itself.
func allowedParameters() []string {
	return []string{"host", "port", "dbname", "user", "password", "sslmode", "application_name",
		"connect_timeout", "default_query_exec_mode"}
}

// knownParameters are parameter names that an error may quote. A name outside this list
// is not quoted: in a URL whose password was not percent-encoded, what looks like a
// parameter name can be part of the password.
func knownParameters() []string {
	return []string{"database", "passfile", "servicefile", "service", "sslkey", "sslcert", "sslrootcert",
		"sslpassword", "sslcertmode", "sslsni", "sslnegotiation", "target_session_attrs", "options",
		"krbsrvname", "krbspn", "channel_binding", "require_auth", "min_protocol_version",
		"max_protocol_version", "gssencmode", "hostaddr", "search_path", "timezone", "client_encoding",
		"datestyle", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
		"statement_cache_capacity", "description_cache_capacity", "pool_max_conns", "pool_min_conns",
		"pool_min_idle_conns", "pool_max_conn_lifetime", "pool_max_conn_idle_time",
		"pool_health_check_period", "pool_max_conn_lifetime_jitter", "pool_ping_timeout"}
}

// errInvalidURL is the error for a connection string that does not parse. Parse errors
// quote the string, which holds a password, so they are never shown.
var errInvalidURL = errors.New("the connection string is not a valid postgres:// URL " +
	"(details withheld, the string may hold a password)")

// poolConfig turns a tenant's connection URL into a pool configuration built from the URL
// alone: nothing from the operator's files or environment. Connecting takes at most
// timeouts.Connect, or the URL's connect_timeout up to MaxConnectTimeout.
func poolConfig(connURL string, timeouts Timeouts) (*pgxpool.Config, error) {
	settings, err := parseURL(connURL)
	if err != nil {
		return nil, err
	}
	connectTimeout, err := connectTimeout(settings["connect_timeout"], timeouts.Connect)
	if err != nil {
		return nil, err
	}
	// "0" keeps PGCONNECT_TIMEOUT out; the timeout itself is set below, to the millisecond.
	settings["connect_timeout"] = "0"
	config, err := pgxpool.ParseConfig(keywordValue(isolated(settings)))
	if err != nil {
		// Such as a port that is not a number, or an unknown sslmode; the message would
		// quote the password.
		return nil, errInvalidURL
	}
	// The environment can add server settings (PGOPTIONS, PGTZ): keep only ours.
	config.ConnConfig.RuntimeParams = map[string]string{"application_name": settings["application_name"]}
	config.ConnConfig.ConnectTimeout = connectTimeout
	return config, nil
}

// connectTimeout is the URL's connect_timeout (whole seconds, 0 or none for the default)
// up to MaxConnectTimeout, or the default.
func connectTimeout(setting string, defaultTimeout time.Duration) (time.Duration, error) {
	if setting == "" {
		return defaultTimeout, nil
	}
	seconds, err := strconv.ParseUint(setting, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("the connection URL's connect_timeout %q is not a whole number of seconds", setting)
	}
	if seconds == 0 {
		return defaultTimeout, nil // libpq's "wait forever" is not on offer
	}
	return min(time.Duration(seconds)*time.Second, MaxConnectTimeout), nil
}

// parseURL reads the settings of a postgres:// or postgresql:// URL, refusing parameters
// outside allowedParameters.
func parseURL(connURL string) (map[string]string, error) {
	if !strings.HasPrefix(connURL, "postgres://") && !strings.HasPrefix(connURL, "postgresql://") {
		return nil, errors.New("the connection string must be a postgres:// or postgresql:// URL " +
			"(keyword=value strings are not accepted)")
	}
	u, err := url.Parse(connURL)
	if err != nil {
		return nil, errInvalidURL
	}
	if u.Fragment != "" || strings.HasSuffix(connURL, "#") {
		return nil, errors.New("the connection URL holds a '#': percent-encode it (%23) if it is part of the password")
	}
	settings := map[string]string{}
	if u.User != nil {
		settings["user"] = u.User.Username()
		if password, ok := u.User.Password(); ok {
			settings["password"] = password
		}
	}
	if err := hostsAndPorts(u.Host, settings); err != nil {
		return nil, err
	}
	if dbname := strings.TrimPrefix(u.Path, "/"); dbname != "" {
		settings["dbname"] = dbname
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, errInvalidURL
	}
	for key, values := range query {
		if err := checkParameter(key, values); err != nil {
			return nil, err
		}
		settings[key] = values[0]
	}
	if settings["host"] == "" {
		return nil, errors.New("the connection URL names no host")
	}
	for _, host := range strings.Split(settings["host"], ",") {
		// libpq reads a host that starts with / (or @, Linux's abstract namespace) as
		// a Unix socket: a file of the operator's pod, perhaps a proxy holding the
		// operator's own credentials.
		if strings.HasPrefix(host, "/") || strings.HasPrefix(host, "@") {
			return nil, errors.New("the connection URL names a Unix socket as its host: a sink connects over TCP only")
		}
	}
	if settings["user"] == "" {
		return nil, errors.New("the connection URL names no user")
	}
	if settings["application_name"] == "" {
		settings["application_name"] = applicationName
	}
	return settings, nil
}

// checkParameter fails unless key is allowed and given once.
func checkParameter(key string, values []string) error {
	allowed := allowedParameters()
	if !slices.Contains(allowed, key) {
		name := "an unknown parameter (not quoted: it may be part of a password that is not percent-encoded)"
		if slices.Contains(knownParameters(), key) {
			name = "parameter " + key
		}
		return fmt.Errorf("the connection URL sets %s, which is not allowed: a connection URL may set only %s",
			name, strings.Join(allowed, ", "))
	}
	if len(values) > 1 {
		return fmt.Errorf("the connection URL sets parameter %s %d times", key, len(values))
	}
	return nil
}

// hostsAndPorts reads the URL's host[:port] list (host1:5432,host2:5433) into the host and
// port settings, as libpq's comma-separated lists.
func hostsAndPorts(hostList string, settings map[string]string) error {
	if hostList == "" {
		return nil
	}
	var hosts, ports []string
	for _, hostPort := range strings.Split(hostList, ",") {
		host, port := hostPort, ""
		if i := strings.LastIndexByte(hostPort, ':'); i >= 0 && !strings.HasSuffix(hostPort, "]") {
			var err error
			if host, port, err = net.SplitHostPort(hostPort); err != nil {
				return errInvalidURL
			}
		}
		hosts = append(hosts, strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		ports = append(ports, port)
	}
	settings["host"] = strings.Join(hosts, ",")
	if strings.Join(ports, "") != "" {
		settings["port"] = strings.Join(ports, ",")
	}
	return nil
}

// isolated is settings with every parameter that libpq could otherwise take from a file,
// the environment or the home directory set explicitly: empty file names read nothing,
// and the rest take libpq's defaults rather than the pod's PG* variables.
func isolated(settings map[string]string) map[string]string {
	out := map[string]string{
		"port": "", "dbname": "", "password": "", "sslmode": "prefer",
		"passfile": "", "servicefile": "", "sslkey": "", "sslcert": "", "sslrootcert": "", "sslpassword": "",
		"sslcertmode": "disable", "sslsni": "1", "sslnegotiation": "postgres", "target_session_attrs": "any",
		"min_protocol_version": "", "max_protocol_version": "", "channel_binding": "prefer", "require_auth": "",
	}
	for k, v := range settings {
		out[k] = v
	}
	return out
}

// keywordValue renders settings as a keyword/value connection string, every value quoted.
func keywordValue(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(settings[k])
		fmt.Fprintf(&b, "%s='%s' ", k, v)
	}
	return b.String()
}
