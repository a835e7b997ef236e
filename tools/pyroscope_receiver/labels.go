// Validation of each sample's string labels, as Pyroscope's distributor
// applies it: a sample's labels join the series' labels (the name's, and the
// ones the server adds), and the whole upload is refused if any series
// breaks pkg/validation ValidateLabels: a label name that is not a
// Prometheus name (the legacy scheme, [a-zA-Z_][a-zA-Z0-9_]*, which
// servers without UTF-8 names enforce), a name over 1024 bytes, a value
// over 2048 bytes, more than 30 label names.
package main

import (
	"errors"
	"fmt"
)

var errTruncated = errors.New("truncated protobuf")

// pbField is one field of a protobuf message: its number, and its bytes if
// length-delimited (varints and fixed fields are skipped).
type pbField struct {
	num  uint64
	wire uint64
	data []byte
}

func pbVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errTruncated
}

// pbFields splits a message into its fields.
func pbFields(b []byte) ([]pbField, error) {
	var out []pbField
	for len(b) > 0 {
		key, n, err := pbVarint(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		f := pbField{num: key >> 3, wire: key & 7}
		switch f.wire {
		case 0:
			if _, n, err = pbVarint(b); err != nil {
				return nil, err
			}
		case 1:
			n = 8
		case 2:
			var l uint64
			if l, n, err = pbVarint(b); err != nil || uint64(len(b)-n) < l {
				return nil, errTruncated
			}
			f.data = b[n : n+int(l)]
			n += int(l)
		case 5:
			n = 4
		default:
			return nil, fmt.Errorf("wire type %d", f.wire)
		}
		if n > len(b) {
			return nil, errTruncated
		}
		b = b[n:]
		out = append(out, f)
	}
	return out, nil
}

// validateSampleLabels checks each sample's string labels (profile.proto:
// Profile.sample = 2, Sample.label = 3, Label.key = 1, Label.str = 2,
// Profile.string_table = 6) against a series that has `seriesNames` label
// names already.
func validateSampleLabels(profile []byte, seriesNames int) *httpError {
	fields, err := pbFields(profile)
	if err != nil {
		return fail(400, "failed to parse pprof: %v", err)
	}
	var strs []string
	var samples [][]byte
	for _, f := range fields {
		switch {
		case f.num == 6 && f.wire == 2:
			strs = append(strs, string(f.data))
		case f.num == 2 && f.wire == 2:
			samples = append(samples, f.data)
		}
	}
	str := func(i uint64) string {
		if i < uint64(len(strs)) {
			return strs[i]
		}
		return ""
	}
	for _, s := range samples {
		sf, err := pbFields(s)
		if err != nil {
			return fail(400, "failed to parse pprof: %v", err)
		}
		names := seriesNames
		for _, f := range sf {
			if f.num != 3 || f.wire != 2 {
				continue
			}
			key, val, isStr := labelKeyStr(f.data)
			if !isStr {
				continue // A numeric label: not a series label.
			}
			k, v := str(key), str(val)
			names++
			switch {
			case !promLabelName.MatchString(k):
				return fail(400, "invalid labels with error: invalid label name '%s'", k)
			case len(k) > maxLabelNameLen:
				return fail(400, "profile has label name too long: '%s'", k)
			case len(v) > maxLabelValueLen:
				return fail(400, "profile with label '%s' has label value too long (%d bytes)", k, len(v))
			}
		}
		if names > maxLabelNames {
			return fail(400, "profile series has %d label names; limit %d", names, maxLabelNames)
		}
	}
	return nil
}

// labelKeyStr reads a Label's key (1) and str (2) string-table indices;
// isStr is false for a numeric label (str 0).
func labelKeyStr(b []byte) (key, str uint64, isStr bool) {
	for len(b) > 0 {
		k, n, err := pbVarint(b)
		if err != nil {
			return 0, 0, false
		}
		b = b[n:]
		if k&7 != 0 {
			return key, str, str != 0
		}
		v, n, err := pbVarint(b)
		if err != nil {
			return 0, 0, false
		}
		b = b[n:]
		switch k >> 3 {
		case 1:
			key = v
		case 2:
			str = v
		}
	}
	return key, str, str != 0
}
