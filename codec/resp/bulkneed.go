package resp

// BulkNeed returns the total length of the bulk string reply that b
// starts with, from its header alone, or 0 when b does not start with a
// complete bulk header: a reader grows its buffer once to that size.
func BulkNeed(b []byte) int {
	if len(b) < 4 || b[0] != '$' {
		return 0
	}
	n := 0
	for i := 1; i < len(b) && i < 12; i++ {
		c := b[i]
		if c == '\r' {
			if i == 1 {
				return 0
			}
			return i + 2 + n + 2
		}
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return 0
}
