package hashring

const (
	fnv64Offset = 0xcbf29ce484222325
	fnv64Prime  = 0x100000001b3
	fnv32Offset = 2166136261
	fnv32Prime  = 16777619
)

// hashFNV1_64 is nutcracker's fnv1_64: 64-bit FNV-1 over sign-extended bytes,
// returning the low 32 bits.
func hashFNV1_64(key []byte) uint32 {
	h := uint64(fnv64Offset)
	for _, b := range key {
		h *= fnv64Prime
		h ^= uint64(int64(int8(b)))
	}
	return uint32(h)
}

// hashFNV1a64 is nutcracker's fnv1a_64, which despite its name runs in 32-bit
// arithmetic: the 64-bit offset and prime truncated to 32 bits.
func hashFNV1a64(key []byte) uint32 {
	h := uint32(fnv64Offset & 0xffffffff)
	for _, b := range key {
		h ^= sext(b)
		h *= uint32(fnv64Prime & 0xffffffff)
	}
	return h
}

// hashFNV1_32 is nutcracker's fnv1_32: 32-bit FNV-1 over sign-extended bytes.
func hashFNV1_32(key []byte) uint32 {
	h := uint32(fnv32Offset)
	for _, b := range key {
		h *= fnv32Prime
		h ^= sext(b)
	}
	return h
}

// hashFNV1a32 is nutcracker's fnv1a_32: 32-bit FNV-1a over sign-extended bytes.
func hashFNV1a32(key []byte) uint32 {
	h := uint32(fnv32Offset)
	for _, b := range key {
		h ^= sext(b)
		h *= fnv32Prime
	}
	return h
}
