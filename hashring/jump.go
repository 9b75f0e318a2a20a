package hashring

import (
	"github.com/cespare/xxhash/v2"
	jump "github.com/dgryski/go-jump"
)

// NumSlots is the number of logical slots of the "jump" distribution.
const NumSlots = 256

// slotOf returns the slot of the bytes a key hashes on.
func slotOf(hashed []byte) int {
	return int(jump.Hash(xxhash.Sum64(hashed), NumSlots))
}
