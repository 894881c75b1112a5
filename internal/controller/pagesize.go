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
	"context"
	"errors"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/nango-operator/nango-operator/internal/nango"
)

// pagesToRecover is how many pages in a row must fit before a halved page size doubles
// again: a data set of large records then costs one answer too large every few pages,
// not every other one.
const pagesToRecover = 4

// pageSizer bounds the memory a page costs by its bytes, not only its records: when
// Nango's answer is larger than the client accepts, the page size halves for the rest of
// the reconcile (down to one record), and doubles back towards spec.pageSize after
// pagesToRecover pages that fit. Every reconcile starts again from spec.pageSize.
type pageSizer struct {
	spec, size, fitted int
}

func newPageSizer(spec int) *pageSizer { return &pageSizer{spec: spec, size: spec} }

// retrySmaller reports whether err is an answer too large that a smaller page may avoid,
// and if so halves the page size.
func (p *pageSizer) retrySmaller(ctx context.Context, err error) bool {
	var e *nango.Error
	if !errors.As(err, &e) || e.Kind != nango.KindResponseTooLarge || p.size <= 1 {
		return false
	}
	p.size, p.fitted = max(1, p.size/2), 0
	log.FromContext(ctx).Info("Nango's answer was larger than the operator accepts; reading smaller pages", "pageSize", p.size)
	return true
}

// fitted notes a page that fit, and doubles a halved page size after pagesToRecover.
func (p *pageSizer) fit() {
	if p.size >= p.spec {
		return
	}
	if p.fitted++; p.fitted >= pagesToRecover {
		p.size, p.fitted = min(p.spec, p.size*2), 0
	}
}
