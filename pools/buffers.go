package pools

import "github.com/shardproxy/shardproxy/internal/sockio"

// PutBuffer is sockio.PutBuffer, kept only while proxy/batch.go still
// calls it here: the buffers live in internal/sockio, and this file goes
// once batch.go calls sockio.PutBuffer.
func PutBuffer(b []byte) { sockio.PutBuffer(b) }
