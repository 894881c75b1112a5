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

package receiver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestUnsignedRequestIsRefusedBeforeItsBodyIsRead (issue 14, item 16): a request without
// a signature header is refused before the receiver reads (up to 1 MiB of) its body.
func TestUnsignedRequestIsRefusedBeforeItsBodyIsRead(t *testing.T) {
	h := newHarness(t, false, nil, fixtures()...)
	body := &countingReader{r: strings.NewReader(strings.Repeat("x", MaxBodyBytes))}
	req := httptest.NewRequest(http.MethodPost, Path, body)
	rec := httptest.NewRecorder()
	h.receiver.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", rec.Code)
	}
	if n := body.read.Load(); n != 0 {
		t.Fatalf("read %d bytes of an unsigned request's body", n)
	}
	if got := h.count(typeUnknown, resultUnauthorized); got != 1 {
		t.Fatalf("counted %v unauthorized", got)
	}
}
