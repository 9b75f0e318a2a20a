package memcache

import "testing"

// The expectations below were checked against memcached 1.6.18: which
// tokens it accepts as a length, exptime, flags or delta.
func TestNumbers(t *testing.T) {
	tests := []struct {
		name string
		tok  string
		i32  int64 // parseInt32 result, when ok32
		ok32 bool
		ok64 bool // parseInt64
		u32  uint64
		okU  bool // parseUint64 / parseUint32
	}{
		{"zero", "0", 0, true, true, 0, true},
		{"plain", "42", 42, true, true, 42, true},
		{"plus sign", "+3", 3, true, true, 3, true},
		{"leading zeros", "007", 7, true, true, 7, true},
		{"leading tab", "\t5", 5, true, true, 5, true},
		{"trailing tab junk", "5\tx", 5, true, true, 5, true},
		{"trailing cr", "5\r", 5, true, true, 5, true},
		{"trailing letter", "5x", 0, false, false, 0, false},
		{"empty", "", 0, false, false, 0, false},
		{"sign only", "-", 0, false, false, 0, false},
		{"space before sign digits", "- 5", 0, false, false, 0, false},
		{"hex", "0x10", 0, false, false, 0, false},
		{"minus zero", "-0", 0, true, true, 0, true},
		{"minus one", "-1", -1, true, true, 0, false},
		{"int32 max", "2147483647", 2147483647, true, true, 2147483647, true},
		{"int32 max plus one", "2147483648", 0, false, true, 2147483648 & 0xffffffff, true},
		{"below int32 wraps", "-4294967293", 3, true, true, 0, false},
		{"int64 max", "9223372036854775807", 0, false, true, 0xffffffff, true},
		{"int64 max plus one", "9223372036854775808", 0, false, false, 0, true},
		{"int64 min", "-9223372036854775808", 0, true, true, 0, false},
		{"below int64 min", "-9223372036854775809", 0, false, false, 0xffffffff, true},
		{"uint64 max", "18446744073709551615", 0, false, false, 0xffffffff, true},
		{"uint64 overflow", "18446744073709551616", 0, false, false, 0, false},
		{"negated to one", "-18446744073709551615", 0, false, false, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := []byte(tc.tok)
			if v, ok := parseInt32(tok); ok != tc.ok32 || (ok && int64(v) != tc.i32) {
				t.Errorf("parseInt32(%q) = %d, %v; want %d, %v", tc.tok, v, ok, tc.i32, tc.ok32)
			}
			if _, ok := parseInt64(tok); ok != tc.ok64 {
				t.Errorf("parseInt64(%q) ok = %v; want %v", tc.tok, ok, tc.ok64)
			}
			if v, ok := parseUint32(tok); ok != tc.okU || (ok && uint64(v) != tc.u32) {
				t.Errorf("parseUint32(%q) = %d, %v; want %d, %v", tc.tok, v, ok, tc.u32, tc.okU)
			}
		})
	}
}
