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
	"encoding/binary"
	"io"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// copyHeader starts PostgreSQL's binary COPY format: the signature, no flags, no extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// postgresEpochMicros is 2000-01-01 00:00:00 UTC, where a binary timestamptz counts its
// microseconds from, in Unix microseconds.
const postgresEpochMicros = 946_684_800_000_000

// copyRows streams records in PostgreSQL's binary COPY format, row by row into a small
// buffer: no per-record values are boxed, and a page is never encoded whole. With key set
// each row starts with the key's four columns (the records table); without, it holds the
// staging table's columns only. The columns are, in order: [provider_config_key,
// connection_id, model, variant,] id, payload (jsonb), pruned, last_action,
// first_seen_at, last_modified_at, deleted_at, cursor. The records are the output of
// sink.PreparePage: text columns are valid UTF-8 without NUL (PostgreSQL checks them
// again), times are UTC to the microsecond.
type copyRows struct {
	key     *sink.Key
	records []sink.Record
	next    int
	buf     []byte
	off     int
	ended   bool
}

// copyBufferSize is what copyRows encodes ahead of its reader: pgconn reads 64 KiB at a time.
const copyBufferSize = 64 << 10

func newCopyRows(key *sink.Key, records []sink.Record) *copyRows {
	buf := make([]byte, 0, copyBufferSize+4096)
	return &copyRows{key: key, records: records, buf: append(buf, copyHeader...)}
}

// Read fills p with the next encoded rows, then the trailer, then answers io.EOF.
func (c *copyRows) Read(p []byte) (int, error) {
	if c.off > 0 { // keep what the last Read left, at the start
		c.buf = c.buf[:copy(c.buf, c.buf[c.off:])]
		c.off = 0
	}
	for len(c.buf) < len(p) && !c.ended {
		if c.next == len(c.records) {
			c.buf = binary.BigEndian.AppendUint16(c.buf, 0xffff) // the trailer: a field count of -1
			c.ended = true
			break
		}
		c.buf = c.appendRow(c.buf, &c.records[c.next])
		c.next++
	}
	n := copy(p, c.buf)
	c.off = n
	if n == 0 && c.ended {
		return 0, io.EOF
	}
	return n, nil
}

// appendRow appends one tuple: its field count, then each field's length and bytes.
func (c *copyRows) appendRow(b []byte, r *sink.Record) []byte {
	fields := uint16(8)
	if c.key != nil {
		fields += 4
	}
	b = binary.BigEndian.AppendUint16(b, fields)
	if c.key != nil {
		b = appendText(b, c.key.ProviderConfigKey)
		b = appendText(b, c.key.ConnectionID)
		b = appendText(b, c.key.Model)
		b = appendText(b, c.key.Variant)
	}
	b = appendText(b, r.ID)
	if r.Payload == nil {
		b = appendNull(b)
	} else { // jsonb: a version byte, 1, then the JSON text
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.Payload)+1))
		b = append(b, 1)
		b = append(b, r.Payload...)
	}
	b = binary.BigEndian.AppendUint32(b, 1)
	if r.Pruned {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendText(b, string(r.Action))
	b = appendTime(b, r.FirstSeenAt)
	b = appendTime(b, r.LastModifiedAt)
	if r.DeletedAt == nil {
		b = appendNull(b)
	} else {
		b = appendTime(b, *r.DeletedAt)
	}
	return appendText(b, r.Cursor)
}

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendNull(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, 0xffffffff) // a length of -1
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixMicro()-postgresEpochMicros))
}
