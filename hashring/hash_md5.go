package hashring

import "crypto/md5"

// hashMD5 is nutcracker's md5 key hash: the first four digest bytes read as a
// little-endian uint32.
func hashMD5(key []byte) uint32 {
	d := md5.Sum(key)
	return le32(d[0:4])
}
