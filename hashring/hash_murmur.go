package hashring

// murmurM and murmurR are MurmurHash2's mixing constants.
const (
	murmurM = 0x5bd1e995
	murmurR = 24
)

// hashMurmur is nutcracker's murmur: MurmurHash2 (little-endian words) with
// the seed 0xdeadbeef*len, so the initial state is seed^len.
func hashMurmur(key []byte) uint32 {
	n := uint32(len(key))
	h := 0xdeadbeef*n ^ n
	for len(key) >= 4 {
		k := le32(key)
		k *= murmurM
		k ^= k >> murmurR
		k *= murmurM
		h *= murmurM
		h ^= k
		key = key[4:]
	}
	switch len(key) {
	case 3:
		h ^= uint32(key[2])<<16 | uint32(key[1])<<8 | uint32(key[0])
		h *= murmurM
	case 2:
		h ^= uint32(key[1])<<8 | uint32(key[0])
		h *= murmurM
	case 1:
		h ^= uint32(key[0])
		h *= murmurM
	}
	h ^= h >> 13
	h *= murmurM
	h ^= h >> 15
	return h
}
