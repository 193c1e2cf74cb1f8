package statsweb

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtproxy-go/mtproxy/stats"
)

// maxLabelRunes caps a user label's length.
const maxLabelRunes = 64

// UserLabel returns the label of the client secret key in the per-user
// statistics: the name the caller gave it, trimmed of white space, with
// every other character that is not printable or is white space replaced
// by '_' and cut to 64 characters; or, when there is no name, it is
// empty, or it contains the
// secret in hex, "secret-" and the first 8 hex digits of the SHA-256 of the
// 16-byte key (the same for the key every time:
// `echo -n KEYHEX | xxd -r -p | sha256sum | cut -c1-8`).
func UserLabel(key [16]byte, name string) string {
	name = sanitizeLabel(strings.TrimSpace(name))
	if name == "" || strings.Contains(strings.ToLower(name), hex.EncodeToString(key[:])) {
		return hashLabel(key)
	}
	return name
}

func hashLabel(key [16]byte) string {
	sum := sha256.Sum256(key[:])
	return "secret-" + hex.EncodeToString(sum[:4])
}

func sanitizeLabel(s string) string {
	var b strings.Builder
	n := 0
	for len(s) > 0 && n < maxLabelRunes {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if r == utf8.RuneError || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			r = '_'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// userRow is one user's share; secrets with the same label are summed.
type userRow struct {
	Label string
	stats.Secret
}

// userRows returns the per-secret statistics by label, sorted by label.
func userRows(per map[[16]byte]stats.Secret, names map[[16]byte]string) []userRow {
	byLabel := make(map[string]*userRow, len(per))
	for key, s := range per {
		label := UserLabel(key, names[key])
		row := byLabel[label]
		if row == nil {
			row = &userRow{Label: label}
			byLabel[label] = row
		}
		row.Add(&s)
	}
	rows := make([]userRow, 0, len(byLabel))
	for _, r := range byLabel {
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, func(a, b userRow) int { return strings.Compare(a.Label, b.Label) })
	return rows
}
