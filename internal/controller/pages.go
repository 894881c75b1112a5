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
	"fmt"
	"time"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/sink"
)

// writeBatchRecords is how many records the reconciler gathers, from as many pages as it
// takes, before it writes them to the sink in one transaction: both sinks ingest fastest
// at about a thousand records a transaction (docs/benchmarks.md), whatever page size
// Nango is read with. A bigger page is written as it is.
const writeBatchRecords = 1000

// fetched is one page read from Nango, or why it could not be.
type fetched struct {
	page *nango.RecordsPage
	err  error
}

// copyPages reads pages after cursor and writes them to the sink in batches of at least
// writeBatchRecords records, each batch in one transaction with the cursor after its last
// page. A reader runs ahead by up to a batch while the sink writes. Reading stops at the
// end of Nango's records, when the reconcile's page or time budget is spent, or when
// another NangoSync waits to sync now (a webhook or a person asked), so that it waits for
// the pages in hand and not for a whole budget. Pages read are written even when reading
// fails after them.
func (r *NangoSyncReconciler) copyPages(ctx context.Context, nsync *syncv1alpha1.NangoSync,
	nangoClient *nango.Client, snk sink.Sink, key sink.Key, cursor string) (progress, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the reader when writing fails

	var p progress
	var batch []*nango.RecordsPage
	records := 0
	flush := func() error {
		written, err := r.writeBatch(ctx, nsync, snk, key, batch)
		batch, records = batch[:0], 0
		p.written = p.written.Add(written)
		return err
	}
	for f := range r.readPages(ctx, nangoClient, nsync, cursor) {
		if f.err != nil {
			return p, joinWriteError(f.err, flush())
		}
		batch = append(batch, f.page)
		records += len(f.page.Records)
		last := f.page.NextCursor == ""
		if records >= writeBatchRecords || last {
			if err := flush(); err != nil {
				return p, err
			}
		}
		if last {
			p.complete = true
			return p, nil
		}
	}
	return p, flush()
}

// joinWriteError reports a read error, and the write of the pages read before it if that
// failed too.
func joinWriteError(readErr, writeErr error) error {
	if writeErr == nil {
		return readErr
	}
	return fmt.Errorf("%w; writing the pages read before it failed too: %w", readErr, writeErr)
}

// readPages reads pages after cursor in the background, up to a batch ahead of the
// writer, until the last page, an error, or the end of the budget; then it closes the
// channel. Cancelling ctx stops it.
func (r *NangoSyncReconciler) readPages(ctx context.Context, nangoClient *nango.Client,
	nsync *syncv1alpha1.NangoSync, cursor string) <-chan fetched {
	req := nango.ListRecordsRequest{
		ConnectionID:      nsync.Spec.ConnectionID,
		ProviderConfigKey: nsync.Spec.ProviderConfigKey,
		Model:             nsync.Spec.Model,
		Variant:           nsync.Spec.Variant,
		Limit:             int(nsync.Spec.PageSize),
	}
	if cursor == "" && nsync.Spec.ModifiedAfter != nil {
		req.ModifiedAfter = nsync.Spec.ModifiedAfter.Time
	}
	ahead := 1
	if req.Limit > 0 {
		ahead = max(1, writeBatchRecords/req.Limit)
	}
	out := make(chan fetched, ahead)
	deadline := time.Now().Add(r.MaxTimePerReconcile)
	go func() {
		defer close(out)
		for pages := 1; ; pages++ {
			req.Cursor = cursor
			page, err := nangoClient.ListRecords(ctx, req)
			if err != nil {
				err = fmt.Errorf("list records of %s/%s/%s: %w", req.ProviderConfigKey, req.ConnectionID, req.Model, err)
			}
			select {
			case out <- fetched{page: page, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil || page.NextCursor == "" {
				return
			}
			if pages >= r.MaxPagesPerReconcile || !time.Now().Before(deadline) || r.waiting.any() {
				return
			}
			cursor = page.NextCursor
		}
	}()
	return out
}

// writeBatch writes the records of pages and the cursor after the last one to the sink in
// one transaction, then moves status.cursor and status.records as the sink moved its own.
func (r *NangoSyncReconciler) writeBatch(ctx context.Context, nsync *syncv1alpha1.NangoSync,
	snk sink.Sink, key sink.Key, pages []*nango.RecordsPage) (sink.WriteResult, error) {
	if len(pages) == 0 {
		return sink.WriteResult{}, nil
	}
	var records []sink.Record
	for _, page := range pages {
		converted, err := sinkRecords(page.Records)
		if err != nil {
			return sink.WriteResult{}, err
		}
		records = append(records, converted...)
	}
	if len(records) == 0 {
		return sink.WriteResult{}, nil // nothing new: the cursor stays where it is
	}
	lastPage := pages[len(pages)-1]
	checkpoint := lastPage.NextCursor
	if checkpoint == "" {
		checkpoint = records[len(records)-1].Cursor
	}
	written, err := snk.WritePage(ctx, key, sink.Page{Records: records, Checkpoint: checkpoint})
	if err != nil {
		return sink.WriteResult{}, &sinkError{err}
	}
	if r.Fault != nil {
		if err := r.Fault(AfterSinkCommit, nsync); err != nil {
			return sink.WriteResult{}, err
		}
	}
	nsync.Status.Cursor = checkpoint
	nsync.Status.Records = addCounts(nsync.Status.Records, written) // as the sink did with its copy
	return written, nil
}
