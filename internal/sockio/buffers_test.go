package sockio

import "testing"

func TestBufferClasses(t *testing.T) {
	for _, c := range []struct {
		name      string
		size, cap int
	}{
		{"empty", 0, 32 << 10},
		{"small", 1, 32 << 10},
		{"first class exactly", 32 << 10, 32 << 10},
		{"just over", 32<<10 + 1, 64 << 10},
		{"middle", 1 << 20, 1 << 20},
		{"last class", 4 << 20, 4 << 20},
		{"beyond the classes", 4<<20 + 1, 4<<20 + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := GetBuffer(c.size)
			if len(b) != 0 || cap(b) != c.cap {
				t.Fatalf("GetBuffer(%d): len %d cap %d, want 0 and %d", c.size, len(b), cap(b), c.cap)
			}
			PutBuffer(append(b, 'x'))
			if b := GetBuffer(c.size); len(b) != 0 || cap(b) != c.cap {
				t.Fatalf("GetBuffer(%d) after PutBuffer: len %d cap %d, want 0 and %d", c.size, len(b), cap(b), c.cap)
			}
		})
	}
}

// TestPutBufferForeign checks that buffers GetBuffer did not make (their
// capacity is no class's) are not handed out again.
func TestPutBufferForeign(t *testing.T) {
	for range 100 {
		PutBuffer(make([]byte, 10, 40<<10))
	}
	for range 100 {
		if b := GetBuffer(33 << 10); cap(b) != 64<<10 {
			t.Fatalf("GetBuffer(33 KB) has capacity %d, want 64 KB", cap(b))
		}
	}
}

func TestBufClass(t *testing.T) {
	for size, want := range map[int]int{0: 0, 32 << 10: 0, 32<<10 + 1: 1, 64 << 10: 1, 4 << 20: 7, 4<<20 + 1: -1, 1 << 30: -1} {
		if got := bufClass(size); got != want {
			t.Errorf("bufClass(%d) = %d, want %d", size, got, want)
		}
	}
}

func BenchmarkGetPutBuffer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		PutBuffer(GetBuffer(64 << 10))
	}
}
