package resp

import "testing"

// TestBulkNeed: the length a bulk reply needs, from its header alone.
func TestBulkNeed(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want int
	}{
		{"whole", "$5\r\nhello\r\n", 11},
		{"header only", "$100\r\n", 108},
		{"header cut", "$10", 0},
		{"no digits", "$\r\n", 0},
		{"null", "$-1\r\n", 0},
		{"not a bulk", "+OK\r\n", 0},
		{"too long a header", "$1234567890123\r\n", 0},
		{"streamed string", "$?\r\n;3\r\nabc\r\n;0\r\n", 0},
		{"streamed header cut", "$?", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BulkNeed([]byte(tc.in)); got != tc.want {
				t.Errorf("BulkNeed(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

// TestClip: error texts are cut at 128 bytes, CR and LF become spaces.
func TestClip(t *testing.T) {
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'k'
	}
	if got := Clip(long); len(got) != 128 {
		t.Errorf("Clip of 200 bytes: %d bytes, want 128", len(got))
	}
	if got := Clip([]byte("a\r\nb")); got != "a  b" {
		t.Errorf("Clip(a CR LF b) = %q", got)
	}
}
