package hashring

import (
	"crypto/md5"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
)

// hashVectors were computed with a C harness built from twemproxy 0.5.0's
// src/hashkit sources (gcc, x86_64, signed char); md5 is checked separately.
var hashVectors = []struct {
	key  string
	want map[string]uint32
}{
	{"", map[string]uint32{"one_at_a_time": 0x00000000, "crc16": 0x00000000, "crc32": 0x00000000, "crc32a": 0x00000000, "fnv1_64": 0x84222325, "fnv1a_64": 0x84222325, "fnv1_32": 0x811c9dc5, "fnv1a_32": 0x811c9dc5, "hsieh": 0x00000000, "murmur": 0x00000000, "jenkins": 0xdeadbefc}},
	{"a", map[string]uint32{"one_at_a_time": 0xca2e9442, "crc16": 0x00007c87, "crc32": 0x000068b7, "crc32a": 0xe8b7be43, "fnv1_64": 0x8601b7be, "fnv1a_64": 0x8601ec8c, "fnv1_32": 0x050c5d7e, "fnv1a_32": 0xe40c292c, "hsieh": 0x93642e87, "murmur": 0x4b41757c, "jenkins": 0xe0a38690}},
	{"hello", map[string]uint32{"one_at_a_time": 0xc8fd181b, "crc16": 0x6b4fc362, "crc32": 0x00003610, "crc32a": 0x3610a686, "fnv1_64": 0xbdbdd4c7, "fnv1a_64": 0x80aabd0b, "fnv1_32": 0xb6fa7167, "fnv1a_32": 0x4f9f2cab, "hsieh": 0x13842ac5, "murmur": 0x521b0bff, "jenkins": 0x2e0cc8f3}},
	{"\x80", map[string]uint32{"one_at_a_time": 0xc31d4e27, "crc16": 0x00009188, "crc32": 0x00003fba, "crc32a": 0x3fba6cad, "fnv1_64": 0x79fe485f, "fnv1a_64": 0x79fdec5f, "fnv1_32": 0xfaf3a29f, "fnv1a_32": 0x04f3b29f, "hsieh": 0xd6f4cb32, "murmur": 0x90556245, "jenkins": 0xb16fde48}},
	{"\xff", map[string]uint32{"one_at_a_time": 0xae65a494, "crc16": 0x00001ef0, "crc32": 0x00007f00, "crc32a": 0xff000000, "fnv1_64": 0x79fe4820, "fnv1a_64": 0x79fe466e, "fnv1_32": 0xfaf3a2e0, "fnv1a_32": 0xf9f3a14e, "hsieh": 0x02a6dba8, "murmur": 0xdb530a9c, "jenkins": 0xe1964da8}},
	{"a\xff", map[string]uint32{"one_at_a_time": 0xefc67232, "crc16": 0x007c26eb, "crc32": 0x0000103d, "crc32a": 0x103da794, "fnv1_64": 0x4b14c825, "fnv1a_64": 0x4abb0c69, "fnv1_32": 0x8f88d2a5, "fnv1a_32": 0xd3db2e29, "hsieh": 0x633883d6, "murmur": 0xc2066bca, "jenkins": 0x3f9cc444}},
	{"ab\xff", map[string]uint32{"one_at_a_time": 0x0603d118, "crc16": 0x7c74dfe3, "crc32": 0x00004c9d, "crc32a": 0xcc9d9ead, "fnv1_64": 0x94505257, "fnv1a_64": 0xfabe022f, "fnv1_32": 0xbc63d0d7, "fnv1a_32": 0xc3b7e16f, "hsieh": 0x75dc9fd6, "murmur": 0xec9082b2, "jenkins": 0xe9af676b}},
	{"abc\xff", map[string]uint32{"one_at_a_time": 0x54616f4c, "crc16": 0x749d9ae4, "crc32": 0x00000a5f, "crc32a": 0x8a5f87dd, "fnv1_64": 0x047bb00e, "fnv1a_64": 0x11f8a9dc, "fnv1_32": 0x46218cee, "fnv1a_32": 0x94cc221c, "hsieh": 0xfaabc597, "murmur": 0xcc0de7e9, "jenkins": 0x3757b44e}},
	{"\x00", map[string]uint32{"one_at_a_time": 0x00000000, "crc16": 0x00000000, "crc32": 0x00005202, "crc32a": 0xd202ef8d, "fnv1_64": 0x8601b7df, "fnv1a_64": 0x8601b7df, "fnv1_32": 0x050c5d1f, "fnv1a_32": 0x050c5d1f, "hsieh": 0x00000000, "murmur": 0xa46d9286, "jenkins": 0x8503b213}},
	{"Four score and seven years ago", map[string]uint32{"one_at_a_time": 0x5554a59f, "crc16": 0xbe60a5ef, "crc32": 0x00003cfe, "crc32a": 0x3cfe93b8, "fnv1_64": 0xce2804c6, "fnv1a_64": 0x1987984c, "fnv1_32": 0xadc7c266, "fnv1a_32": 0xdc02398c, "hsieh": 0x0c5fc188, "murmur": 0x666caeaf, "jenkins": 0x1ab867b2}},
	{"\xc3\xa9t\xc3\xa9-\x80\x81\xfe{tag}long-key-0123456789", map[string]uint32{"one_at_a_time": 0xf4beaca5, "crc16": 0x7f6979f5, "crc32": 0x0000560a, "crc32a": 0xd60ad923, "fnv1_64": 0x62d96383, "fnv1a_64": 0x6c747287, "fnv1_32": 0x37c96f63, "fnv1a_32": 0xad38b167, "hsieh": 0x45cf3322, "murmur": 0x152ddacd, "jenkins": 0xe38235fd}},
	{"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c", map[string]uint32{"one_at_a_time": 0xa3e6d8a6, "crc16": 0xd3468506, "crc32": 0x00007fce, "crc32a": 0x7fce4d2c, "fnv1_64": 0xbbc2735f, "fnv1a_64": 0x29585d0f, "fnv1_32": 0x586a571f, "fnv1a_32": 0x6009324f, "hsieh": 0x0f844d8f, "murmur": 0x06d62c04, "jenkins": 0x74494fcd}},
	{"user:1000", map[string]uint32{"one_at_a_time": 0xb563b74f, "crc16": 0xe1644671, "crc32": 0x00001f74, "crc32a": 0x9f7417e3, "fnv1_64": 0xd39e3d21, "fnv1a_64": 0xae7b4289, "fnv1_32": 0xa6affca1, "fnv1a_32": 0x507c1d89, "hsieh": 0xddec1969, "murmur": 0x8e24aec7, "jenkins": 0x048c4d84}},
	{"\xff\xfe\xfd\xfc\xfb\xfa\xf9", map[string]uint32{"one_at_a_time": 0x0711b6c0, "crc16": 0xce15eba2, "crc32": 0x00004f75, "crc32a": 0xcf750f6a, "fnv1_64": 0xb61cf837, "fnv1a_64": 0x96a0d8af, "fnv1_32": 0x60bb6677, "fnv1a_32": 0x84574daf, "hsieh": 0x151efbd1, "murmur": 0xdd13c044, "jenkins": 0xe6cf301c}},
	{"0123456789ab", map[string]uint32{"one_at_a_time": 0xf6361f26, "crc16": 0x9c66f284, "crc32": 0x00000623, "crc32a": 0x0623c932, "fnv1_64": 0xa4cfc71d, "fnv1a_64": 0x43b49151, "fnv1_32": 0x1963825d, "fnv1a_32": 0x2d4c5d51, "hsieh": 0xabe296d7, "murmur": 0x0d4e2821, "jenkins": 0x6d223753}},
	{"0123456789abc", map[string]uint32{"one_at_a_time": 0xcae77770, "crc16": 0x66f21798, "crc32": 0x00004e68, "crc32a": 0xce68ad26, "fnv1_64": 0x0d0f5624, "fnv1a_64": 0x0bd2b7f6, "fnv1_32": 0x54a63804, "fnv1a_32": 0x8136b5b6, "hsieh": 0x9aefedfa, "murmur": 0xc23faf3e, "jenkins": 0x37f93ead}},
}

func TestHashVectors(t *testing.T) {
	for _, v := range hashVectors {
		for name, want := range v.want {
			t.Run(name+"/"+v.key, func(t *testing.T) {
				f, err := Hash(name)
				if err != nil {
					t.Fatal(err)
				}
				if got := f([]byte(v.key)); got != want {
					t.Errorf("%s(%q) = %#08x, want %#08x", name, v.key, got, want)
				}
			})
		}
	}
}

func TestHashVectorsCoverEveryName(t *testing.T) {
	for _, name := range HashNames {
		if name == "md5" {
			continue
		}
		if len(hashVectors) == 0 {
			t.Fatal("no hash vectors")
		}
		if _, ok := hashVectors[0].want[name]; !ok {
			t.Errorf("no vectors for %s", name)
		}
	}
}

func TestMD5Vectors(t *testing.T) {
	// Digests from RFC 1321's test suite; the hash is bytes 0..3 little-endian.
	cases := []struct {
		name, key string
		want      uint32
	}{
		{"empty", "", 0xd98c1dd4},  // d41d8cd9...
		{"a", "a", 0xb975c10c},     // 0cc175b9...
		{"abc", "abc", 0x98500190}, // 90015098...
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := hashMD5([]byte(c.key)); got != c.want {
				t.Errorf("md5(%q) = %#08x, want %#08x", c.key, got, c.want)
			}
		})
	}
}

func TestHashesAgainstStandardLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		key := make([]byte, r.IntN(64))
		for j := range key {
			key[j] = byte(r.UintN(256))
		}
		ieee := crc32.ChecksumIEEE(key)
		if got := hashCRC32a(key); got != ieee {
			t.Fatalf("crc32a(%x) = %#x, want %#x", key, got, ieee)
		}
		if got, want := hashCRC32(key), ieee>>16&0x7fff; got != want {
			t.Fatalf("crc32(%x) = %#x, want %#x", key, got, want)
		}
		d := md5.Sum(key)
		if got, want := hashMD5(key), binary.LittleEndian.Uint32(d[:4]); got != want {
			t.Fatalf("md5(%x) = %#x, want %#x", key, got, want)
		}
	}
}

func TestLookup3PublishedVectors(t *testing.T) {
	const four = "Four score and seven years ago"
	cases := []struct {
		name    string
		key     string
		initval uint32
		want    uint32
	}{
		{"empty", "", 0, 0xdeadbeef},
		{"four score", four, 0, 0x17770551},
		{"four score initval 1", four, 1, 0xcd628161},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := lookup3([]byte(c.key), c.initval); got != c.want {
				t.Errorf("lookup3(%q, %d) = %#08x, want %#08x", c.key, c.initval, got, c.want)
			}
		})
	}
}

func TestHashNames(t *testing.T) {
	if len(HashNames) != 12 {
		t.Fatalf("%d hash names, want 12", len(HashNames))
	}
	for _, name := range HashNames {
		if f, err := Hash(name); err != nil || f == nil {
			t.Errorf("Hash(%q) = %v, %v", name, f, err)
		}
	}
	_, err := Hash("sha1")
	if err == nil || !strings.Contains(err.Error(), `"sha1"`) {
		t.Errorf("Hash(sha1) error = %v, want one naming the hash", err)
	}
}
