package hashring

import "math/bits"

// hashOneAtATime is nutcracker's one_at_a_time: Bob Jenkins' one-at-a-time
// hash over sign-extended bytes.
func hashOneAtATime(key []byte) uint32 {
	var h uint32
	for _, b := range key {
		h += sext(b)
		h += h << 10
		h ^= h >> 6
	}
	h += h << 3
	h ^= h >> 11
	h += h << 15
	return h
}

// jenkinsInitval is the initval nutcracker passes to lookup3.
const jenkinsInitval = 13

// hashJenkins is nutcracker's jenkins: Bob Jenkins' lookup3 hashlittle with
// initval 13, reading the key as little-endian words.
func hashJenkins(key []byte) uint32 { return lookup3(key, jenkinsInitval) }

// lookup3 is hashlittle from Bob Jenkins' lookup3.c on a little-endian
// machine. Its public test vectors: lookup3(nil, 0) = 0xdeadbeef and
// lookup3("Four score and seven years ago", 0) = 0x17770551.
func lookup3(key []byte, initval uint32) uint32 {
	a := 0xdeadbeef + uint32(len(key)) + initval
	b, c := a, a
	for len(key) > 12 {
		a += le32(key[0:4])
		b += le32(key[4:8])
		c += le32(key[8:12])
		a, b, c = lookup3Mix(a, b, c)
		key = key[12:]
	}
	if len(key) == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], key)
	a += le32(tail[0:4])
	b += le32(tail[4:8])
	c += le32(tail[8:12])
	return lookup3Final(a, b, c)
}

func le32(p []byte) uint32 {
	return uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
}

func lookup3Mix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

func lookup3Final(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}
