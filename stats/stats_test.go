package stats

import (
	"reflect"
	"testing"
)

// TestAddCoversEveryField fails when a counter is added to the struct but
// not to Add.
func TestAddCoversEveryField(t *testing.T) {
	var one Counters
	v := reflect.ValueOf(&one).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(uint64(i + 1))
	}
	var sum Counters
	sum.Add(&one)
	sum.Add(&one)
	s := reflect.ValueOf(sum)
	for i := range s.NumField() {
		if got, want := s.Field(i).Uint(), uint64(2*(i+1)); got != want {
			t.Errorf("%s: %d after adding twice, want %d", s.Type().Field(i).Name, got, want)
		}
	}
}
