package hashring

import "hash/crc32"

// crc16Table is the CRC-16/XMODEM table (polynomial 0x1021, MSB first) that
// nutcracker's crc16 uses.
var crc16Table = makeCRC16Table()

func makeCRC16Table() [256]uint16 {
	var t [256]uint16
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}

// hashCRC16 is nutcracker's crc16: CRC-16/XMODEM whose running value is kept in
// 32 bits and never masked, so keys longer than two bytes carry high bits.
func hashCRC16(key []byte) uint32 {
	var crc uint32
	for _, b := range key {
		crc = crc<<8 ^ uint32(crc16Table[byte(crc>>8)^b])
	}
	return crc
}

// hashCRC32 is nutcracker's crc32, the libmemcached form: bits 16..30 of the
// IEEE CRC-32.
func hashCRC32(key []byte) uint32 {
	return crc32.ChecksumIEEE(key) >> 16 & 0x7fff
}

// hashCRC32a is nutcracker's crc32a: the plain IEEE CRC-32.
func hashCRC32a(key []byte) uint32 {
	return crc32.ChecksumIEEE(key)
}
