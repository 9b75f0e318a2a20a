package memcache

// AppendRetrieval appends a retrieval request for keys to dst: "get k1 k2\r\n",
// or "gat 10 k1\r\n" with the exptime for gat and gats. The proxy uses it to
// send each server its fragment of a multi-key get.
func AppendRetrieval(dst []byte, cmd Command, exptime []byte, keys [][]byte) []byte {
	dst = append(dst, cmd.String()...)
	if cmd.has(attrExptime) {
		dst = append(dst, ' ')
		dst = append(dst, exptime...)
	}
	for _, k := range keys {
		dst = append(dst, ' ')
		dst = append(dst, k...)
	}
	return append(dst, "\r\n"...)
}

// AppendEnd appends "END\r\n", the end of a retrieval reply.
func AppendEnd(dst []byte) []byte { return append(dst, "END\r\n"...) }

// AppendLine appends s and "\r\n": a one-line reply such as "ERROR",
// "SERVER_ERROR <message>" or "VERSION <version>".
func AppendLine(dst []byte, s string) []byte {
	dst = append(dst, s...)
	return append(dst, "\r\n"...)
}
