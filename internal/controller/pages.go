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

	corev1 "k8s.io/api/core/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/sink"
)

// writeBatchRecords is how many records the reconciler gathers, from as many pages as it
// takes, before it writes them to the sink in one transaction: both sinks ingest fastest
// at about a thousand records a transaction (docs/benchmarks.md), whatever page size
// Nango is read with. A bigger page is written as it is.
const writeBatchRecords = 1000

// writeBatchBytes bounds a batch by the bytes of its payloads too: a thousand records of
// 60 KiB would hold 60 MiB while they wait for the write, besides the pages read ahead,
// whatever the answer cap. A batch is written once it reaches either bound.
const writeBatchBytes = 16 << 20

// fetched is one page read from Nango, its records converted for the sink, or why it
// could not be. The page's answer itself is not kept: converted records own their bytes,
// so a page costs its memory once.
type fetched struct {
	records    []sink.Record
	nextCursor string
	// bytes adds up the records' payloads.
	bytes int
	err   error
}

// copyPages reads pages after cursor and writes them to the sink in batches of at least
// writeBatchRecords records or writeBatchBytes of payloads, each batch in one transaction with the cursor after its last
// page. A reader runs ahead by up to two batches while the sink writes. Reading stops at
// the end of Nango's records, or when the reconcile's record or time budget is spent. When
// another NangoSync waits to sync now (a webhook or a person asked), the worker is handed
// over after the write in progress, so a wake waits for one write and not for a whole
// budget. Pages read are written even when reading fails after them.
func (r *NangoSyncReconciler) copyPages(ctx context.Context, nsync *syncv1alpha1.NangoSync,
	nangoClient *nango.Client, snk sink.Sink, key sink.Key, cursor string) (progress, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the reader when writing fails

	var p progress
	var batch []fetched
	records, bytes, writes := 0, 0, 0
	flush := func() error {
		written, err := r.writeBatch(ctx, nsync, snk, key, batch)
		batch, records, bytes = batch[:0], 0, 0
		p.written = p.written.Add(written)
		writes++
		return err
	}
	for f := range r.readPages(ctx, nangoClient, nsync, cursor) {
		if f.err != nil {
			return p, joinWriteError(f.err, flush())
		}
		batch = append(batch, f)
		records += len(f.records)
		bytes += f.bytes
		last := f.nextCursor == ""
		// Another NangoSync waits to sync now: let it have the worker, and the sink, at
		// once. Pages not written yet are read again next time, unless this reconcile has
		// written nothing so far: every reconcile moves the cursor, however many wakes come.
		yield := !last && r.wakes.claimYield()
		if records >= writeBatchRecords || bytes >= writeBatchBytes || last || (yield && writes == 0) {
			if err := flush(); err != nil {
				return p, err
			}
		}
		if last {
			p.complete = true
			return p, nil
		}
		if yield {
			return p, nil
		}
	}
	if err := ctx.Err(); err != nil {
		// The reader stopped because the reconcile's context ended, not because its
		// budget was spent: that is a failure, not progress.
		return p, err
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

// readPages reads pages after cursor in the background and converts their records for
// the sink, up to two batches ahead of the writer, until the last page, an error, or the end
// of the budget; then it closes the channel. Cancelling ctx stops it. Converting here
// rather than in the writer keeps that work off the sink's critical path.
func (r *NangoSyncReconciler) readPages(ctx context.Context, nangoClient *nango.Client,
	nsync *syncv1alpha1.NangoSync, cursor string) <-chan fetched {
	req := nango.ListRecordsRequest{
		ConnectionID:      nsync.Spec.ConnectionID,
		ProviderConfigKey: nsync.Spec.ProviderConfigKey,
		Model:             nsync.Spec.Model,
		Variant:           nsync.DataSet().Variant,
		Limit:             int(nsync.Spec.PageSize),
	}
	if cursor == "" && nsync.Spec.ModifiedAfter != nil {
		req.ModifiedAfter = nsync.Spec.ModifiedAfter.Time
	}
	// The reader holds one page while it waits to hand it over, so a channel one page
	// shorter than two batches keeps it two batches ahead of the writer, and a page of
	// two batches or more one page ahead. With small pages one batch ahead was not
	// enough: the writer waited for pages (docs/benchmarks.md, "Throughput of an initial
	// sync", step 10).
	ahead := 0
	if req.Limit > 0 {
		ahead = max(0, 2*writeBatchRecords/req.Limit-1)
	}
	out := make(chan fetched, ahead)
	deadline := time.Now().Add(r.MaxTimePerReconcile)
	go func() {
		defer close(out)
		sizer := newPageSizer(req.Limit)
		for read := 0; ; {
			req.Cursor, req.Limit = cursor, sizer.size
			f := fetchPage(ctx, nangoClient, req)
			if f.err != nil && sizer.retrySmaller(ctx, f.err) {
				continue
			}
			sizer.fit()
			select {
			case out <- f:
			case <-ctx.Done():
				return
			}
			if f.err != nil || f.nextCursor == "" {
				return
			}
			if read += len(f.records); read >= r.MaxRecordsPerReconcile || !time.Now().Before(deadline) {
				return
			}
			cursor = f.nextCursor
		}
	}()
	return out
}

// fetchPage reads one page and converts its records for the sink.
func fetchPage(ctx context.Context, nangoClient *nango.Client, req nango.ListRecordsRequest) fetched {
	page, err := nangoClient.ListRecords(ctx, req)
	if err != nil {
		return fetched{err: fmt.Errorf("list records of %s/%s/%s: %w", req.ProviderConfigKey, req.ConnectionID, req.Model, err)}
	}
	records, err := sink.FromNango(page.Records)
	if err != nil {
		return fetched{err: fmt.Errorf("records of %s/%s/%s: %w", req.ProviderConfigKey, req.ConnectionID, req.Model, err)}
	}
	// The sink's per-record work, done here while the writer writes the previous batch.
	sink.Prepare(records)
	f := fetched{records: records, nextCursor: page.NextCursor}
	for _, r := range records {
		f.bytes += len(r.Payload)
	}
	return f
}

// writeBatch writes the records of pages and the cursor after the last one to the sink in
// one transaction, then moves status.cursor and status.records as the sink moved its own.
func (r *NangoSyncReconciler) writeBatch(ctx context.Context, nsync *syncv1alpha1.NangoSync,
	snk sink.Sink, key sink.Key, pages []fetched) (sink.WriteResult, error) {
	if len(pages) == 0 {
		return sink.WriteResult{}, nil
	}
	records := pages[0].records
	if len(pages) > 1 {
		n := 0
		for _, page := range pages {
			n += len(page.records)
		}
		records = make([]sink.Record, 0, n)
		for _, page := range pages {
			records = append(records, page.records...)
		}
	}
	if len(records) == 0 {
		return sink.WriteResult{}, nil // nothing new: the cursor stays where it is
	}
	checkpoint := pages[len(pages)-1].nextCursor
	if checkpoint == "" {
		checkpoint = records[len(records)-1].Cursor
	}
	start := time.Now()
	written, err := snk.WritePage(ctx, key, sink.Page{Records: records, Checkpoint: checkpoint, Owner: owner(nsync)})
	r.metrics.wrote(sinkKind(nsync.Spec.Sink), written, time.Since(start), err)
	if err != nil {
		return sink.WriteResult{}, &sinkError{err}
	}
	if written.Quarantined > 0 {
		r.Recorder.Eventf(nsync, nil, corev1.EventTypeWarning, "RecordsQuarantined", "Sync",
			"%d records could not be stored in %s and went to the table %s with the reason (see docs/records.md); the rest was written",
			written.Quarantined, nsync.Status.Sink, sink.QuarantineTable)
	}
	nsync.Status.Cursor = checkpoint
	nsync.Status.Records = addCounts(nsync.Status.Records, written) // as the sink did with its copy
	noteNewestRecord(nsync, records)
	return written, nil
}
