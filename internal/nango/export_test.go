package nango

// DecodePage exposes decodePage to the external tests.
func DecodePage(body []byte) (*RecordsPage, error) { return decodePage(body) }
