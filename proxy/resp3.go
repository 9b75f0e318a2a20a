package proxy

import "github.com/shardproxy/shardproxy/codec/resp"

// The replies the proxy writes itself whose encoding differs between RESP2
// and RESP3 (resp3: the client said HELLO 3), as Redis encodes them.

// appendNull appends a null: "$-1" in RESP2, "_" in RESP3.
func appendNull(dst []byte, resp3 bool) []byte {
	if resp3 {
		return resp.AppendNull3(dst)
	}
	return resp.AppendNull(dst)
}

// appendMap appends the header of a map of n pairs: in RESP2 an array of
// 2n elements, keys and values alternating.
func appendMap(dst []byte, resp3 bool, n int) []byte {
	if resp3 {
		return resp.AppendMap(dst, n)
	}
	return resp.AppendArray(dst, 2*n)
}

// appendText appends text as Redis answers INFO: a bulk string in RESP2, a
// verbatim string of format "txt" in RESP3.
func appendText(dst []byte, resp3 bool, text []byte) []byte {
	if resp3 {
		return resp.AppendVerbatim(dst, "txt", text)
	}
	return resp.AppendBulk(dst, text)
}
