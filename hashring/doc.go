// Package hashring decides which server of a pool holds a key. It places every
// key on exactly the server nutcracker (twemproxy) 0.5.0 picks for the same
// pool configuration, and it adds a 256-slot mode for pools that will later be
// resharded.
//
// # Nutcracker placement
//
// A pool is a list of servers in configuration order. Each server has an
// identity string (see [ServerName]: the explicit name from the server line,
// else "host:port", else "host" alone when the port is 11211) and a weight.
// Placing a key takes three steps:
//
//  1. [HashKey]: with a two-byte hash tag such as "{}", the part of the key
//     between the first tag[0] and the first tag[1] after it is hashed, if
//     that part is non-empty; otherwise the whole key is hashed.
//  2. The pool's hash function (see [HashNames] and [Hash]) turns those bytes
//     into a uint32. An empty key hashes to 0, and a pool with one server needs
//     no hash at all.
//  3. The distribution turns the hash into a server index:
//     "ketama" ([NewKetama]) walks an md5 continuum of points per server,
//     "modula" ([NewModula]) takes the hash modulo the total weight, and
//     "random" ([NewRandom]) ignores the key.
//
// Nutcracker does not keep a pool's servers in configuration order: while
// checking for duplicate names it sorts them by identity string, shorter
// strings first and equal lengths bytewise, and keeps that order. Modula lays
// out its weight units in that order, and ketama breaks ties between equal
// point values by it. This package does the same internally; every index it
// returns is still an index into the configured server list.
//
// Ketama's continuum is md5 whatever the hash function, so a hash with a
// narrow range lands on few points: with crc32 (15 bits) nearly every key
// goes to the server owning the continuum's first points, in nutcracker too.
//
// The hash functions reproduce nutcracker's quirks bit for bit: the fnv and
// one_at_a_time functions read bytes as signed char, fnv1a_64 works in 32-bit
// arithmetic, crc32 is the libmemcached form, crc16 never masks its running
// value, hsieh sign-extends the last byte of a three-byte tail, murmur seeds
// with 0xdeadbeef*len and jenkins is lookup3 with initval 13. The package tests compare placement with a running nutcracker.
//
// Ketama point strings "<name>-<index>" longer than 85 bytes overflow
// nutcracker's 86-byte buffer, and nutcracker then hashes bytes beyond it, so
// placement for such long names cannot match and is not promised.
//
// # The 256-slot mode ("jump")
//
// Distribution "jump" maps a key to one of [NumSlots] slots with
// jump.Hash(xxhash.Sum64(HashKey(key, tag)), 256), whatever the configured hash
// function, and maps each slot to a server through a table of 256 server
// indexes. An explicit table ([Config.Slots]) must hold exactly 256 valid
// server indexes. Without one, [DefaultSlotTable] derives a balanced table
// from the server list: each server holds its weighted share of the 256
// slots, rounded by the Sainte-Laguë method ([SlotQuotas]), and the table is
// built by appending the servers in order, each taking from the servers
// before it only the slots they hold above their new share. So appending a
// server to the list (or raising the weight of the last server) moves
// exactly the slots the new server takes, and no slot moves between servers
// that were already there. Removing, reordering or reweighting an earlier
// server reshuffles slots; pin the table with Config.Slots before doing
// that. [SlotRanges] writes a table in the configuration's "slots:" syntax.
//
// A jump pool holds at most 256 servers, and without an explicit table
// every server must get a slot in the derived one (a server whose share
// rounds to nothing would hold no key); [New] refuses other pools.
//
// A [Placement] bundles hash function, hash tag, distribution and table. It is
// immutable after [New], safe for concurrent use, and [Placement.Pick] does not
// allocate.
package hashring
