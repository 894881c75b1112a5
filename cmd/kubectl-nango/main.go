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

// Command kubectl-nango is the kubectl plugin of nango-operator: `kubectl nango sync NAME`
// asks for a sync now and waits until the operator handled it, `resync` reads everything
// again, `suspend` and `resume` pause a NangoSync or a NangoSyncSet, and `status` shows what
// the operator did. It is built on k8s.io/cli-runtime, so kubectl's own flags (--kubeconfig,
// --context, -n, …) work; kubectl runs it for `kubectl nango` when it is on PATH.
package main

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Exit codes a script can act on.
const (
	exitOK = 0
	// exitFailed: the request could not be made, or the NangoSync reports a failure.
	exitFailed = 1
	// exitUsage: the command line is wrong.
	exitUsage = 2
	// exitTimeout: the operator did not handle the request within --timeout.
	exitTimeout = 3
)

// exitError carries the exit code a failure ends the plugin with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	cmd := newRootCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	err := cmd.Execute()
	if err == nil {
		os.Exit(exitOK)
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	var exit *exitError
	if errors.As(err, &exit) {
		os.Exit(exit.code)
	}
	os.Exit(exitFailed)
}
