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

// Package freeport finds TCP ports on 127.0.0.1 for the servers that tests and the demo
// start as other processes.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

// The ports Addr picks from: below Linux's ephemeral range (32768 and up), so that no
// outgoing connection of another process takes the port between the moment Addr finds it
// free and the moment the server binds it. Ports the kernel hands out for 127.0.0.1:0 are
// in that range, and parallel test packages collided on them.
const (
	firstPort = 20000
	ports     = 12000
)

// Addr answers "127.0.0.1:PORT" for a port nobody listens on now.
func Addr() (string, error) {
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(firstPort+rand.IntN(ports))))
		if err != nil {
			continue // taken: try another
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
			return "", err
		}
		return addr, nil
	}
	return "", errors.New("no free port on 127.0.0.1 between 20000 and 32000 after 100 tries")
}

// Port is the port of Addr.
func Port() (int, error) {
	addr, err := Addr()
	if err != nil {
		return 0, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}
