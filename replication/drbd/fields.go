package drbd

import (
	"fmt"
	"math"
	"strconv"
)

// fieldReader converts the fields of one line, keeping the first error.
type fieldReader struct {
	m   map[string]string
	err error
}

func fields(m map[string]string) fieldReader { return fieldReader{m: m} }

func (f *fieldReader) fail(key, v, what string) {
	if f.err == nil {
		f.err = fmt.Errorf("%s %q is not %s", key, v, what)
	}
}

// str sets *dst when the field is present.
func (f *fieldReader) str(key string, dst *string) {
	if v, ok := f.m[key]; ok {
		*dst = v
	}
}

// count sets *dst to a non-negative 64-bit number when the field is present.
func (f *fieldReader) count(key string, dst *int64) {
	v, ok := f.m[key]
	if !ok {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		f.fail(key, v, "a non-negative number")
		return
	}
	*dst = n
}

// index sets *dst to a non-negative int (a volume, minor or node id).
func (f *fieldReader) index(key string, dst *int) {
	v, ok := f.m[key]
	if !ok {
		return
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		f.fail(key, v, "a volume, minor or node number")
		return
	}
	*dst = int(n)
}

// requiredIndex is index for a field the line must have.
func (f *fieldReader) requiredIndex(key string) int {
	n := -1
	f.index(key, &n)
	if n < 0 && f.err == nil {
		f.err = fmt.Errorf("no %s", key)
	}
	return n
}

// boolean sets *dst from yes/no (true/false).
func (f *fieldReader) boolean(key string, dst *bool) {
	switch v, ok := f.m[key]; {
	case !ok:
	case v == "yes" || v == "true":
		*dst = true
	case v == "no" || v == "false":
		*dst = false
	default:
		f.fail(key, v, "yes or no")
	}
}

// percent sets *dst to a finite number from 0 to 100.
func (f *fieldReader) percent(key string, dst *float64) {
	v, ok := f.m[key]
	if !ok {
		return
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(x) || x < 0 || x > 100 {
		f.fail(key, v, "a percentage")
		return
	}
	*dst = x
}
