package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/mtproxy-go/mtproxy/codec/secret"
)

// The config file (--config FILE) is TOML. Its keys are the long names of
// the flags, with - or _ between words (http-ports or http_ports), at the
// top level, before any table:
//
//	http-ports = [443]              # a list flag takes an array (or one value)
//	domain = "www.example.com"
//	handshake-timeout = "10s"       # durations are strings
//	proxy-tag = "0123456789abcdef0123456789abcdef"
//
// and the named users, each with a secret in any form -S accepts:
//
//	[users]
//	alice = "dd00112233445566778899aabbccddeeff"
//	bob = "7gARIjNEVWZ3iJmqu8zd7v93d3cuZXhhbXBsZS5jb20"
//
// A flag given on the command line overrides the file's value (a list
// flag's whole list; -S the file's mtproto-secret and users). Relative
// paths in the file (aes-pwd, proxy-multi-conf, log-file) are relative to
// the file's directory. An unknown key, a value of the wrong type or an
// invalid one is an error naming the file, line and key. --config itself
// and the subcommands' flags (--qr, --timeout) are command line only.

// configKeys lists every key the file may hold: each setting's long names
// in both spellings, mapped to the setting.
func configKeys(idx *flagIndex) map[string]*flagInfo {
	keys := map[string]*flagInfo{}
	for _, fi := range idx.order {
		if fi.noFile {
			continue
		}
		for _, n := range fi.names {
			if len(n) > 1 {
				keys[n] = fi
				keys[strings.ReplaceAll(n, "-", "_")] = fi
			}
		}
	}
	return keys
}

// fileType returns a struct type with one toml.Primitive field per key
// in keys, plus Users: decoding into it marks exactly the known keys, so
// that MetaData.Undecoded lists the unknown ones.
func fileType(keys map[string]*flagInfo) (reflect.Type, map[string]int) {
	fields := []reflect.StructField{{Name: "Users", Type: reflect.TypeFor[toml.Primitive](), Tag: `toml:"users"`}}
	index := map[string]int{"users": 0}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		index[k] = len(fields)
		fields = append(fields, reflect.StructField{
			Name: "K" + strconv.Itoa(len(fields)),
			Type: reflect.TypeFor[toml.Primitive](),
			Tag:  reflect.StructTag(`toml:"` + k + `"`),
		})
	}
	return reflect.StructOf(fields), index
}

// applyConfigFile sets the flags of fs from the file at path, except those
// in skip (given on the command line), and reads its users into o.
func applyConfigFile(o *options, fs *flag.FlagSet, idx *flagIndex, path string, skip map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	keys := configKeys(idx)
	typ, index := fileType(keys)
	doc := reflect.New(typ)
	md, err := toml.Decode(string(data), doc.Interface())
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	prim := func(key string) toml.Primitive {
		return doc.Elem().Field(index[key]).Interface().(toml.Primitive)
	}
	dir := filepath.Dir(path)
	seen := map[string]string{} // canonical name → the key that set it
	for _, k := range md.Keys() {
		if len(k) != 1 {
			continue
		}
		key := k[0]
		if _, known := index[key]; !known {
			if _, ok := index[strings.ToLower(key)]; ok {
				// The decoder matched a known key in other letter
				// case to its field, but flag names are case-sensitive.
				return unknownKey(path, string(data), k)
			}
			continue // left undecoded: reported below
		}
		p := prim(key)
		if key == "users" {
			users, err := decodeUsers(&md, p)
			if err != nil {
				return fmt.Errorf("%s:%w", path, err)
			}
			o.fileUsers = users
			continue
		}
		fi := keys[key]
		if prev, dup := seen[fi.canonical]; dup {
			return fmt.Errorf("%s:%w", path, errorAt(&md, p, fmt.Errorf("sets %s again (already set by %s)", fi.canonical, prev)))
		}
		seen[fi.canonical] = key
		if skip[fi.canonical] {
			continue // the command line's value wins
		}
		set := &flagSetter{fs: fs, info: fi, dir: dir}
		if err := md.PrimitiveDecode(p, set); err != nil {
			return fmt.Errorf("%s:%w", path, posError(err))
		}
	}
	// Every known key has been decoded by now, users' secrets included.
	if und := md.Undecoded(); len(und) > 0 {
		return unknownKey(path, string(data), und[0])
	}
	return nil
}

// unknownKey words the error for key k, with its line.
func unknownKey(path, data string, k toml.Key) error {
	// Decoding again into a map gives every top-level key a Primitive,
	// whose position the decoder reports in errors.
	var all map[string]toml.Primitive
	md, _ := toml.Decode(data, &all)
	line := 0
	if p, ok := all[k[0]]; ok {
		line = lineOf(&md, p)
	}
	hint := ""
	name := strings.ReplaceAll(k[0], "_", "-")
	switch {
	case len(k) > 1:
	case name == "config":
		hint = "; a config file cannot include another"
	case len(name) == 1:
		_, _, idx := newFlagSet("run")
		if fi := idx.byName[name]; fi != nil {
			hint = "; use the long name " + fi.canonical
		}
	case name != k[0] || strings.ToLower(name) != name:
		hint = "; keys are the long flag names, in lower case"
	}
	return fmt.Errorf("%s:%d: unknown key %q%s", path, line, k.String(), hint)
}

// decodeUsers reads the [users] table in file order.
func decodeUsers(md *toml.MetaData, p toml.Primitive) ([]namedSecret, error) {
	var raw any
	if err := md.PrimitiveDecode(p, &raw); err != nil {
		return nil, posError(err)
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, errorAt(md, p, fmt.Errorf("want a table of name = \"secret\", got %s", tomlType(raw)))
	}
	var table map[string]toml.Primitive
	if err := md.PrimitiveDecode(p, &table); err != nil {
		return nil, posError(err)
	}
	var users []namedSecret
	byKey := map[[16]byte]string{}
	for _, k := range md.Keys() {
		if len(k) != 2 || k[0] != "users" {
			continue
		}
		name, up := k[1], table[k[1]]
		if !userName.MatchString(name) {
			return nil, errorAt(md, up, fmt.Errorf("user name %q: use 1 to 64 letters, digits and _ . @ -", name))
		}
		var s userSecret
		if err := md.PrimitiveDecode(up, &s); err != nil {
			return nil, posError(err)
		}
		if other, dup := byKey[s.Key]; dup {
			return nil, errorAt(md, up, fmt.Errorf("users %s and %s have the same key; give each user a secret of its own", other, name))
		}
		byKey[s.Key] = name
		users = append(users, namedSecret{name: name, secret: secret.Secret(s)})
	}
	return users, nil
}

// userSecret decodes a user's secret.
type userSecret secret.Secret

func (u *userSecret) UnmarshalTOML(data any) error {
	s, ok := data.(string)
	if !ok {
		return fmt.Errorf("want a secret string, got %s", tomlType(data))
	}
	sec, err := secret.Parse(s)
	if err != nil {
		return err
	}
	*u = userSecret(sec)
	return nil
}

// flagSetter sets one flag from a TOML value.
type flagSetter struct {
	fs   *flag.FlagSet
	info *flagInfo
	dir  string
}

func (s *flagSetter) UnmarshalTOML(data any) error {
	vals, err := flagStrings(data, s.info)
	if err != nil {
		return err
	}
	for _, v := range vals {
		if s.info.path && v != "" && !filepath.IsAbs(v) {
			v = filepath.Join(s.dir, v)
		}
		if err := s.fs.Set(s.info.canonical, v); err != nil {
			return err
		}
	}
	return nil
}

// flagStrings turns a TOML value into the strings the flag would get on
// the command line, checking its type.
func flagStrings(data any, fi *flagInfo) ([]string, error) {
	switch data.(type) {
	case map[string]any, []map[string]any:
		if fi.canonical == "user" {
			return nil, errors.New(`user is -u, the account to switch to; named users go in a [users] table, one name = "secret" per line`)
		}
		return nil, fmt.Errorf("want a value, got %s", tomlType(data))
	}
	if arr, ok := data.([]any); ok {
		if fi.kind != kindList {
			return nil, fmt.Errorf("takes one value, not an array")
		}
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			v, err := flagString(e, fi)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	v, err := flagString(data, fi)
	if err != nil {
		return nil, err
	}
	return []string{v}, nil
}

func flagString(data any, fi *flagInfo) (string, error) {
	switch v := data.(type) {
	case bool:
		if fi.kind == kindBool {
			return strconv.FormatBool(v), nil
		}
	case int64:
		if fi.kind == kindInt || fi.kind == kindString || fi.kind == kindList || fi.canonical == "verbosity" {
			return strconv.FormatInt(v, 10), nil
		}
		if fi.kind == kindDuration {
			return "", fmt.Errorf("want a duration string such as \"30s\", got the number %d", v)
		}
	case string:
		if fi.kind != kindBool {
			return v, nil
		}
	}
	want := map[flagKind]string{kindString: "a string", kindInt: "a number", kindBool: "true or false",
		kindDuration: `a duration string such as "30s"`, kindList: "a string, a number or an array of them"}[fi.kind]
	return "", fmt.Errorf("want %s, got %s", want, tomlType(data))
}

func tomlType(data any) string {
	switch data.(type) {
	case string:
		return "a string"
	case int64:
		return "a number"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return fmt.Sprintf("a %T", data)
}

// errAt is a decoding target that fails with err, so that the decoder
// reports the position of the key it was given.
type errAt struct{ err error }

func (e errAt) UnmarshalTOML(any) error { return e.err }

// errorAt returns err placed at p's key: "LINE: key: err".
func errorAt(md *toml.MetaData, p toml.Primitive, err error) error {
	return posError(md.PrimitiveDecode(p, errAt{err}))
}

// lineOf returns the line of p's key.
func lineOf(md *toml.MetaData, p toml.Primitive) int {
	var pe toml.ParseError
	if errors.As(md.PrimitiveDecode(p, errAt{errors.New("probe")}), &pe) {
		return pe.Position.Line
	}
	return 0
}

// posError words a decoding error as "LINE: key: message".
func posError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%d: %s: %s", pe.Position.Line, pe.LastKey, pe.Message)
	}
	return err
}
