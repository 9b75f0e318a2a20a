package sockio

import "sync"

// Read buffers are kept in size classes (32 KB, 64 KB ... 4 MB), so a
// connection that carries large values reuses buffers instead of allocating
// one per request; sync.Pool lets the garbage collector take them back when
// the proxy goes quiet.
const (
	minClass   = 32 << 10
	numClasses = 8
)

var bufClasses [numClasses]sync.Pool

// headers keeps the *[]byte that carried a buffer through a class's pool,
// so that giving a buffer back allocates nothing.
var headers = sync.Pool{New: func() any { return new([]byte) }}

// bufClass returns the smallest class that holds size bytes, or -1.
func bufClass(size int) int {
	c, n := 0, minClass
	for n < size {
		c++
		n <<= 1
	}
	if c >= numClasses {
		return -1
	}
	return c
}

// GetBuffer returns an empty buffer of at least size bytes.
func GetBuffer(size int) []byte {
	c := bufClass(size)
	if c < 0 {
		return make([]byte, 0, size)
	}
	if v := bufClasses[c].Get(); v != nil {
		h := v.(*[]byte)
		b := (*h)[:0]
		*h = nil
		headers.Put(h)
		return b
	}
	return make([]byte, 0, minClass<<c)
}

// PutBuffer gives back a buffer that GetBuffer made; others are left to
// the garbage collector.
func PutBuffer(b []byte) {
	c := bufClass(cap(b))
	if c < 0 || minClass<<c != cap(b) {
		return
	}
	h := headers.Get().(*[]byte)
	*h = b[:0]
	bufClasses[c].Put(h)
}
