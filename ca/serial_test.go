package ca

import (
	"math/big"
	"testing"
)

func TestSerialString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *big.Int
		want string
	}{
		{name: "nil", in: nil, want: ""},
		{name: "one", in: big.NewInt(1), want: "1"},
		{name: "uppercase, no leading zero", in: big.NewInt(0x0abcdef), want: "ABCDEF"},
		{name: "16 bytes", in: new(big.Int).SetBytes([]byte{0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a}), want: "7F00000000000000000000000000000A"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := SerialString(tc.in); got != tc.want {
				t.Errorf("SerialString(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseSerial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // canonical; "" means an error
	}{
		{in: "ABCDEF", want: "ABCDEF"},
		{in: "abcdef", want: "ABCDEF"},
		{in: "00ab", want: "AB"},
		{in: "7f:00:0a", want: "7F000A"},
		{in: "1234567890123456789012345678901234567890", want: "1234567890123456789012345678901234567890"},
		{in: "F234567890123456789012345678901234567890FF"},
		{in: ""},
		{in: "0"},
		{in: "-1"},
		{in: "+1"},
		{in: "0x1"},
		{in: "xyz"},
		{in: "1_0"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			n, err := ParseSerial(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Errorf("ParseSerial(%q) = %v, nil, want an error", tc.in, n)
				}
				return
			}
			if err != nil || SerialString(n) != tc.want {
				t.Errorf("ParseSerial(%q) = %v, %v, want %s", tc.in, SerialString(n), err, tc.want)
			}
		})
	}
}

func TestNewSerial(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		n, err := newSerial()
		if err != nil {
			t.Fatalf("newSerial() = %v", err)
		}
		if n.Sign() <= 0 || n.BitLen() > 8*serialLen-1 {
			t.Fatalf("newSerial() = %x, want positive with the top bit of %d bytes clear", n, serialLen)
		}
		s := SerialString(n)
		if seen[s] {
			t.Fatalf("newSerial() repeated %s", s)
		}
		seen[s] = true
	}
}
