package overlap

import "testing"

func TestInexact(t *testing.T) {
	buf := make([]byte, 64)
	for _, tc := range []struct {
		x, y []byte
		want bool
	}{
		{buf[:32], buf[:32], false},  // in place
		{buf[:32], buf[32:], false},  // disjoint
		{buf[:32], buf[31:63], true}, // last byte shared
		{buf[1:33], buf[:32], true},  // shifted by one
		{buf[:0], buf[:32], false},   // empty
		{buf[:32], make([]byte, 32), false},
	} {
		if got := Inexact(tc.x, tc.y); got != tc.want {
			t.Errorf("Inexact(%p+%d, %p+%d) = %v, want %v", tc.x, len(tc.x), tc.y, len(tc.y), got, tc.want)
		}
	}
}
