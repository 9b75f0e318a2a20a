package hashring

// hashHsieh is nutcracker's hsieh: Paul Hsieh's SuperFastHash. Like
// nutcracker, it sign-extends the third byte of a three-byte tail.
func hashHsieh(key []byte) uint32 {
	if len(key) == 0 {
		return 0
	}
	var h uint32
	for ; len(key) >= 4; key = key[4:] {
		h += le16(key)
		tmp := le16(key[2:])<<11 ^ h
		h = h<<16 ^ tmp
		h += h >> 11
	}
	switch len(key) {
	case 3:
		h += le16(key)
		h ^= h << 16
		h ^= sext(key[2]) << 18
		h += h >> 11
	case 2:
		h += le16(key)
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(key[0])
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}

func le16(p []byte) uint32 { return uint32(p[0]) | uint32(p[1])<<8 }
