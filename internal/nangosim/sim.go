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

package nangosim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Default names used when an Options field is left empty.
const (
	DefaultAccount     = "default"
	DefaultEnvironment = "dev"
)

// ReadScope is the scope a secret key needs to read records.
const ReadScope = "environment:records:read"

// Options configures an emulator.
type Options struct {
	// Now is the clock for record timestamps, the 365-day rule and rate
	// limit windows. Defaults to time.Now.
	Now func() time.Time
	// Seed makes internal UUIDs and fault draws reproducible. Zero picks a
	// fixed seed, so two emulators built alike behave alike.
	Seed uint64
	// SecretKey and SigningKey of the default environment; generated (UUID
	// v4) when empty.
	SecretKey  string
	SigningKey string
	// WebhookURL of the default environment; webhooks are not sent without one.
	WebhookURL string
	// MaxPageBytes is an optional byte budget for a GET /records answer: a page
	// stops early (with next_cursor set) once it is reached. Zero means none.
	MaxPageBytes int
	// RateLimit limits requests per account; the zero value turns it off.
	RateLimit RateLimit
	// WebhookRetryWaits are the waits between webhook delivery attempts;
	// Nango makes at most three attempts, about 3 s and 6 s apart.
	WebhookRetryWaits []time.Duration
	// WebhookTimeout bounds each delivery attempt (Nango: 20 s).
	WebhookTimeout time.Duration
	// HTTPClient sends webhooks. Defaults to a client without a timeout of its
	// own (WebhookTimeout applies per attempt).
	HTTPClient *http.Client
}

// RateLimit is a fixed-window request budget per account: Limit requests in a
// Window that starts with the first request after the previous one ended
// (Nango: 200 per 60 s on the default plan). A zero Limit turns limiting off.
type RateLimit struct {
	Limit  int
	Window time.Duration
}

// Environment is a Nango environment: its keys and webhook settings.
type Environment struct {
	Account    string `json:"account,omitempty"`
	Name       string `json:"name"`
	SecretKey  string `json:"secret_key"`
	SigningKey string `json:"signing_key"`
	WebhookURL string `json:"webhook_url,omitempty"`
	// Scopes of the secret key; nil grants every scope.
	Scopes []string `json:"scopes,omitempty"`
}

// Sim is an in-memory Nango server. All methods are safe for concurrent use.
type Sim struct {
	now          func() time.Time
	webhookWaits []time.Duration
	webhookTTL   time.Duration
	httpClient   *http.Client

	mu           sync.RWMutex // guards the data below
	envs         map[string]*environment
	byKey        map[string]*environment
	maxPageBytes int
	triggers     []Trigger
	connSeq      int64 // the last connection's internal id

	rngMu sync.Mutex
	rng   *rand.Rand

	limits  rateLimiter
	faults  faultInjector
	counter stats
	bufs    sync.Pool
}

type environment struct {
	Environment
	webhooks     WebhookSettings
	integrations map[string]*integration
}

type integration struct {
	key         string
	provider    string
	connections map[string]*connection
	syncs       []SyncSpec
}

type connection struct {
	id       string
	seq      int64 // Nango's internal integer id
	created  int64 // Unix microseconds
	updated  int64 // Unix microseconds of the last change of its tags, 0 if none
	fetched  int64 // Unix microseconds of the last read of its credentials, 0 if none
	authMode string
	tags     map[string]string
	endUser  *EndUser
	// authErrorLog is the log id of the active auth error (a failed refresh),
	// "" when there is none.
	authErrorLog string
	models       map[string]*modelStore
	syncs        map[string]*syncState // by syncKey(name, variant)
}

// New builds an emulator with one account and one environment.
func New(opts Options) *Sim {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	seed := opts.Seed
	if seed == 0 {
		seed = 0x6e616e676f // "nango"
	}
	s := &Sim{
		now:          now,
		webhookWaits: opts.WebhookRetryWaits,
		webhookTTL:   opts.WebhookTimeout,
		httpClient:   opts.HTTPClient,
		envs:         map[string]*environment{},
		byKey:        map[string]*environment{},
		maxPageBytes: opts.MaxPageBytes,
		rng:          rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	if s.webhookWaits == nil {
		s.webhookWaits = []time.Duration{3 * time.Second, 6 * time.Second}
	}
	if s.webhookTTL == 0 {
		s.webhookTTL = 20 * time.Second
	}
	if s.httpClient == nil {
		s.httpClient = &http.Client{}
	}
	s.limits.init(opts.RateLimit)
	s.faults.rng = s.float
	env := Environment{
		Account:    DefaultAccount,
		Name:       DefaultEnvironment,
		SecretKey:  opts.SecretKey,
		SigningKey: opts.SigningKey,
		WebhookURL: opts.WebhookURL,
	}
	if _, err := s.AddEnvironment(env); err != nil {
		// Only a malformed caller-supplied key can fail here; keep the
		// emulator usable and let requests report it.
		panic(fmt.Sprintf("nangosim: default environment: %v", err))
	}
	return s
}

// AddEnvironment adds an environment; empty keys are generated. It returns
// the environment as stored.
func (s *Sim) AddEnvironment(e Environment) (Environment, error) {
	if e.Name == "" {
		return Environment{}, errors.New("environment name is required")
	}
	if e.Account == "" {
		e.Account = DefaultAccount
	}
	if e.SecretKey == "" {
		e.SecretKey = s.NewUUID()
	}
	if e.SigningKey == "" {
		e.SigningKey = s.NewUUID()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.envs[e.Name]; dup {
		return Environment{}, fmt.Errorf("environment %q already exists", e.Name)
	}
	if _, dup := s.byKey[e.SecretKey]; dup {
		return Environment{}, fmt.Errorf("environment %q: secret key already in use", e.Name)
	}
	env := &environment{Environment: e, integrations: map[string]*integration{},
		webhooks: WebhookSettings{OnAuthCreation: true, OnAuthRefreshError: true}}
	s.envs[e.Name] = env
	s.byKey[e.SecretKey] = env
	return e, nil
}

// Environment returns an environment by name ("" is the default one).
func (s *Sim) Environment(name string) (Environment, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	env, ok := s.envs[envName(name)]
	if !ok {
		return Environment{}, false
	}
	return env.Environment, true
}

// SetWebhookURL sets where an environment's webhooks go.
func (s *Sim) SetWebhookURL(envName string, url string) error {
	return s.updateEnv(envName, func(e *environment) { e.WebhookURL = url })
}

// SetSigningKey replaces an environment's webhook signing key.
func (s *Sim) SetSigningKey(envName string, key string) error {
	return s.updateEnv(envName, func(e *environment) { e.SigningKey = key })
}

// SetScopes restricts what an environment's secret key may do (nil: all).
func (s *Sim) SetScopes(envName string, scopes []string) error {
	return s.updateEnv(envName, func(e *environment) { e.Scopes = scopes })
}

func (s *Sim) updateEnv(name string, f func(*environment)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok := s.envs[envName(name)]
	if !ok {
		return fmt.Errorf("unknown environment %q", envName(name))
	}
	f(env)
	return nil
}

// SetMaxPageBytes sets the GET /records byte budget (0: none).
func (s *Sim) SetMaxPageBytes(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPageBytes = n
}

// SetRateLimit changes the per-account budget; it applies from the next window.
func (s *Sim) SetRateLimit(rl RateLimit) { s.limits.set(rl) }

// SetFaults replaces the faults injected into the public API.
func (s *Sim) SetFaults(f Faults) { s.faults.set(f) }

// NewUUID returns a random UUID v4 from the emulator's seeded source.
func (s *Sim) NewUUID() string {
	id := s.newID()
	return string(appendUUID(nil, id))
}

func (s *Sim) newID() [16]byte {
	s.rngMu.Lock()
	a, b := s.rng.Uint64(), s.rng.Uint64()
	s.rngMu.Unlock()
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], a)
	binary.BigEndian.PutUint64(id[8:], b)
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

func (s *Sim) float() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()
}

func (s *Sim) nowMicro() int64 { return s.now().UnixMicro() }

func envName(name string) string {
	if name == "" {
		return DefaultEnvironment
	}
	return name
}
