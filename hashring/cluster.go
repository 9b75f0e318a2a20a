package hashring

// ClusterSlots is the number of hash slots of a Redis Cluster.
const ClusterSlots = 16384

// clusterHashTag is the hash tag Redis Cluster uses; it is not configurable.
const clusterHashTag = "{}"

// ClusterSlot returns the Redis Cluster hash slot of key, the number that
// CLUSTER KEYSLOT answers: CRC-16/XMODEM (polynomial 0x1021, initial value 0,
// no reflection) modulo [ClusterSlots], over the key's hash tag when it has
// one. The hash tag is the bytes between the first '{' and the first '}'
// after it, when they enclose at least one byte; otherwise the whole key is
// hashed (see [HashKey] with tag "{}"). So "{user1}:a" and "{user1}:b" share a
// slot, while "{}x" and "a{}" hash whole. ClusterSlot does not allocate.
func ClusterSlot(key []byte) int {
	return int(crc16XMODEM(HashKey(key, clusterHashTag)) & (ClusterSlots - 1))
}

// crc16XMODEM is CRC-16/XMODEM over b, table-driven: the checksum Redis
// Cluster uses for slots (its check value over "123456789" is 0x31C3).
func crc16XMODEM(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^c]
	}
	return crc
}
