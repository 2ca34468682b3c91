package deploy

import (
	"fmt"
	"strconv"
	"strings"
)

// Tier is a guest's SLA tier. A higher tier is placed first and may stop
// guests of lower tiers when capacity is short. The zero Tier is not valid.
type Tier int

// The tiers, lowest first, so that Gold > Silver > Bronze.
const (
	Bronze Tier = iota + 1
	Silver
	Gold
)

// ParseTier parses "gold", "silver" or "bronze" (in any case).
func ParseTier(s string) (Tier, error) {
	switch strings.ToLower(s) {
	case "gold":
		return Gold, nil
	case "silver":
		return Silver, nil
	case "bronze":
		return Bronze, nil
	}
	return 0, fmt.Errorf("unknown tier %q: want gold, silver or bronze", s)
}

// Valid reports whether t is one of Gold, Silver and Bronze.
func (t Tier) Valid() bool { return t >= Bronze && t <= Gold }

func (t Tier) String() string {
	switch t {
	case Gold:
		return "gold"
	case Silver:
		return "silver"
	case Bronze:
		return "bronze"
	}
	return "tier(" + strconv.Itoa(int(t)) + ")"
}

// MarshalText writes the tier's name, so plans print as words in JSON.
func (t Tier) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("marshal %s: not a tier", t)
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses a tier's name, as ParseTier does.
func (t *Tier) UnmarshalText(b []byte) error {
	v, err := ParseTier(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Zone is a guest's placement zone: ZoneA, ZoneB or ZoneNone.
type Zone string

// The zones. A guest of zone A and a guest of zone B of the same tier exclude
// each other: gold ones per site, silver ones per host.
const (
	ZoneNone Zone = ""
	ZoneA    Zone = "A"
	ZoneB    Zone = "B"
)

// ParseZone parses "A" or "B" (in any case), or "" or "none" for no zone.
func ParseZone(s string) (Zone, error) {
	switch strings.ToLower(s) {
	case "a":
		return ZoneA, nil
	case "b":
		return ZoneB, nil
	case "", "none":
		return ZoneNone, nil
	}
	return "", fmt.Errorf("unknown zone %q: want A, B or none", s)
}

// Valid reports whether z is one of ZoneA, ZoneB and ZoneNone.
func (z Zone) Valid() bool { return z == ZoneNone || z == ZoneA || z == ZoneB }

// label names a tier and zone as the SLA model does: "Gold-Zone-A".
func label(t Tier, z Zone) string {
	name := t.String()
	return strings.ToUpper(name[:1]) + name[1:] + "-Zone-" + string(z)
}
