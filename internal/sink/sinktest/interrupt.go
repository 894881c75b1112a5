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

package sinktest

import (
	"context"
	"sync"
)

// callCountingContext cancels itself when its Done method is called for the nth time. Sinks
// and their drivers look at Done at fixed points of a write (starting the transaction,
// each statement, the commit), so the nth call is a reproducible point at which to
// interrupt a write, without timers.
type callCountingContext struct {
	context.Context // the parent, for Deadline and Value

	mu       sync.Mutex
	calls    int
	n        int
	done     chan struct{}
	canceled bool
}

func cancelAfterCalls(parent context.Context, n int) context.Context {
	return &callCountingContext{Context: parent, n: n, done: make(chan struct{})}
}

func (c *callCountingContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls >= c.n && !c.canceled {
		c.canceled = true
		close(c.done)
	}
	return c.done
}

func (c *callCountingContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return context.Canceled
	}
	return nil
}
