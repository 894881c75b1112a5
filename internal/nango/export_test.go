package nango

// DecodePage exposes decodePage to the external tests.
func DecodePage(body []byte) (*RecordsPage, error) { return decodePage(body) }

// WithoutPayloadSpans is p with the records' metadata spans cleared, to compare its
// records with ones built by hand.
func WithoutPayloadSpans(p *RecordsPage) *RecordsPage {
	out := *p
	out.Records = make([]Record, len(p.Records))
	copy(out.Records, p.Records)
	for i := range out.Records {
		out.Records[i].metadataSpan = [2]int{}
	}
	return &out
}
