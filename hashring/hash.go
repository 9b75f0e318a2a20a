package hashring

import (
	"bytes"
	"fmt"
	"strconv"
)

// HashFunc hashes a key the way a nutcracker hash function does. It is the
// raw function: for an empty key it returns what nutcracker's function would
// (nutcracker itself never calls it with an empty key; [Placement] uses 0).
type HashFunc func(key []byte) uint32

// HashNames lists the 12 nutcracker hash names, in nutcracker's order.
var HashNames = []string{
	"one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64",
	"fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins",
}

// Hash returns the hash function nutcracker knows by name.
func Hash(name string) (HashFunc, error) {
	switch name {
	case "one_at_a_time":
		return hashOneAtATime, nil
	case "md5":
		return hashMD5, nil
	case "crc16":
		return hashCRC16, nil
	case "crc32":
		return hashCRC32, nil
	case "crc32a":
		return hashCRC32a, nil
	case "fnv1_64":
		return hashFNV1_64, nil
	case "fnv1a_64":
		return hashFNV1a64, nil
	case "fnv1_32":
		return hashFNV1_32, nil
	case "fnv1a_32":
		return hashFNV1a32, nil
	case "hsieh":
		return hashHsieh, nil
	case "murmur":
		return hashMurmur, nil
	case "jenkins":
		return hashJenkins, nil
	}
	return nil, fmt.Errorf("hashring: unknown hash %q (known: %v)", name, HashNames)
}

// HashKey returns the part of key that is hashed, given a two-byte hash tag
// such as "{}": the bytes between the first tag[0] and the first tag[1] after
// it, when both exist and enclose at least one byte. Otherwise, and for a tag
// that is not exactly two bytes long (the empty tag included), it returns the
// whole key. The result aliases key; HashKey does not allocate.
func HashKey(key []byte, tag string) []byte {
	if len(tag) != 2 {
		return key
	}
	start := bytes.IndexByte(key, tag[0])
	if start < 0 {
		return key
	}
	end := bytes.IndexByte(key[start+1:], tag[1])
	if end <= 0 {
		return key
	}
	return key[start+1 : start+1+end]
}

// DefaultKetamaPort is the port that nutcracker leaves out of a server's
// identity, for compatibility with libmemcached.
const DefaultKetamaPort = 11211

// ServerName returns nutcracker's identity of a server: name if non-empty,
// else host alone for port 11211, else "host:port". Nutcracker uses the port
// text as written in its configuration; ServerName writes it in decimal
// without leading zeros.
func ServerName(host string, port int, name string) string {
	if name != "" {
		return name
	}
	if port == DefaultKetamaPort {
		return host
	}
	return host + ":" + strconv.Itoa(port)
}

// sext returns a key byte as nutcracker's (uint32_t)(char) conversion does on
// platforms where char is signed: bytes >= 0x80 are sign-extended.
func sext(b byte) uint32 { return uint32(int32(int8(b))) }
