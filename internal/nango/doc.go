// Package nango is the operator's only way to talk to Nango: pages of
// records, sync triggers and status, typed errors, rate limiting shared
// by every sync of one secret key, and the webhooks Nango sends (their
// bodies and signatures).
//
// It follows ../shared/nango-api.md, including its odd corners: a short page
// with next_cursor set is not the end, pruned records carry no payload, a
// malformed cursor answers 500 (told apart from a sick server, see
// ListRecords), and every record's own fields are kept as the raw JSON Nango
// sent.
package nango
