package proxyconf

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
)

// A SyntaxError reports a file that is not a valid proxy-multi.conf.
type SyntaxError struct {
	File string // as given to Parse
	Line int    // 1-based; 0 for the file as a whole
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Parse parses the contents of a proxy-multi.conf; file names it in
// errors, which are *SyntaxError.
//
// The grammar is the official proxy's (§6.2). Statements end with ';'.
// Between statements, and before ':' and ';', spaces, tabs, CRs, LFs and
// '#' comments may appear; elsewhere only spaces and tabs, and a DC number
// must be followed by one. Keywords are recognised as prefixes:
//
//	proxy_for DC HOST:PORT;      a middle proxy for DC (-32768..32767)
//	proxy HOST:PORT;             the same for DC 0
//	default DC;                  the cluster for DCs not in the file
//	min_connections N;           1..max_connections (default 4)
//	max_connections N;           min_connections..1000 (default 8)
//	timeout MS;                  10..30000; has no effect
//
// HOST is an IPv4 address, a host name or an IPv6 address in brackets, at
// most 63 bytes. All lines of one DC must be consecutive.
func Parse(file string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &SyntaxError{File: file, Msg: fmt.Sprintf("file of %d bytes, the limit is %d", len(data), MaxFileSize)}
	}
	p := parser{file: file, data: data, line: 1, conf: &Config{
		index:    make(map[int]int),
		minConns: DefaultMinConnections,
		maxConns: DefaultMaxConnections,
	}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	if len(p.conf.clusters) == 0 {
		return nil, &SyntaxError{File: file, Msg: "no proxy_for or proxy statement"}
	}
	return p.conf, nil
}

type parser struct {
	file    string
	data    []byte
	pos     int
	line    int // of data[pos]
	conf    *Config
	targets int
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &SyntaxError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) parse() error {
	for p.skipSpace(); p.pos < len(p.data); p.skipSpace() {
		if err := p.statement(); err != nil {
			return err
		}
		if err := p.expect(';'); err != nil {
			return err
		}
	}
	return nil
}

// statement parses a statement up to its ';'.
func (p *parser) statement() error {
	c, line := p.conf, p.line
	switch {
	case p.keyword("proxy_for"):
		dc, err := p.dc()
		if err != nil {
			return err
		}
		if p.pos == len(p.data) || p.data[p.pos] != ' ' && p.data[p.pos] != '\t' {
			return p.errorf(p.line, "expected space or tab after DC")
		}
		return p.target(line, dc)
	case p.keyword("proxy"):
		return p.target(line, 0)
	case p.keyword("default"):
		dc, err := p.dc()
		c.def = dc
		return err
	case p.keyword("min_connections"):
		// Each bound is checked against the other's current value.
		n, err := p.number()
		if err == nil && (n < 1 || n > c.maxConns) {
			err = p.errorf(line, "min_connections %d out of range 1..%d (max_connections)", n, c.maxConns)
		}
		c.minConns = n
		return err
	case p.keyword("max_connections"):
		n, err := p.number()
		if err == nil && (n < c.minConns || n > 1000) {
			err = p.errorf(line, "max_connections %d out of range %d (min_connections)..1000", n, c.minConns)
		}
		c.maxConns = n
		return err
	case p.keyword("timeout"):
		// The official checks it and then never uses it.
		n, err := p.number()
		if err == nil && (n < 10 || n > 30000) {
			err = p.errorf(line, "timeout %d out of range 10..30000", n)
		}
		return err
	}
	return p.errorf(line, "unknown statement %q", p.peekWord())
}

// target parses HOST:PORT and adds it to the cluster dc; line is that of
// the statement.
func (p *parser) target(line, dc int) error {
	c := p.conf
	if p.targets == MaxTargets {
		return p.errorf(line, "more than %d targets", MaxTargets)
	}
	host, err := p.host()
	if err != nil {
		return err
	}
	if err := p.expect(':'); err != nil {
		return err
	}
	p.skipBlank()
	port, ok := p.digits()
	if !ok || port == 0 {
		return p.errorf(p.line, "expected port number")
	}
	if port > 0xffff {
		return p.errorf(p.line, "port %d out of range", port)
	}
	addr := host + ":" + strconv.Itoa(port)

	i, ok := c.index[dc]
	switch {
	case !ok && len(c.clusters) == MaxClusters:
		return p.errorf(line, "more than %d clusters", MaxClusters)
	case !ok:
		i = len(c.clusters)
		c.index[dc] = i
		c.clusters = append(c.clusters, Cluster{ID: dc})
	case i != len(c.clusters)-1:
		return p.errorf(line, "lines for DC %d are not consecutive", dc)
	}
	c.clusters[i].Targets = append(c.clusters[i].Targets, addr)
	p.targets++
	return nil
}

// host parses a host name or address, which it returns in canonical form.
func (p *parser) host() (string, error) {
	p.skipBlank()
	start := p.pos
	if p.pos < len(p.data) && p.data[p.pos] == '[' {
		p.pos++
		for p.pos < len(p.data) && (isWordByte(p.data[p.pos]) || p.data[p.pos] == ':') {
			p.pos++
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
		}
	} else {
		for p.pos < len(p.data) && isWordByte(p.data[p.pos]) {
			p.pos++
		}
	}
	word := string(p.data[start:p.pos])
	switch {
	case word == "":
		return "", p.errorf(p.line, "expected host")
	case len(word) > 63:
		return "", p.errorf(p.line, "host longer than 63 bytes")
	case word[0] == '[':
		if len(word) < 2 || word[len(word)-1] != ']' {
			return "", p.errorf(p.line, "expected ']' after %s", word)
		}
		a, err := netip.ParseAddr(word[1 : len(word)-1])
		if err != nil || !a.Is6() {
			return "", p.errorf(p.line, "invalid IPv6 address %s", word)
		}
		return "[" + a.String() + "]", nil
	case isNumeric(word):
		a, err := netip.ParseAddr(word)
		if err != nil || !a.Is4() {
			return "", p.errorf(p.line, "invalid IPv4 address %s", word)
		}
		return word, nil
	}
	return word, nil
}

// isWordByte reports whether b can be part of a host name.
func isWordByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '-' || b == '_'
}

// isNumeric reports whether s has only digits and dots, so that it can
// only be meant as an IPv4 address.
func isNumeric(s string) bool {
	for i := range len(s) {
		if s[i] != '.' && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// dc parses a DC index: an optional '-' and digits.
func (p *parser) dc() (int, error) {
	p.skipBlank()
	neg := p.pos < len(p.data) && p.data[p.pos] == '-'
	if neg {
		p.pos++
	}
	n, ok := p.digits()
	if neg {
		n = -n
	}
	if !ok || n < -0x8000 || n > 0x7fff {
		return 0, p.errorf(p.line, "expected DC number in -32768..32767")
	}
	return n, nil
}

// number parses an unsigned decimal number.
func (p *parser) number() (int, error) {
	p.skipBlank()
	n, ok := p.digits()
	if !ok {
		return 0, p.errorf(p.line, "expected number")
	}
	return n, nil
}

// digits consumes decimal digits and returns their value, which saturates
// rather than overflows, and whether there were any.
func (p *parser) digits() (int, bool) {
	const limit = 1 << 31
	start, n := p.pos, 0
	for p.pos < len(p.data) && '0' <= p.data[p.pos] && p.data[p.pos] <= '9' {
		n = min(n*10+int(p.data[p.pos]-'0'), limit)
		p.pos++
	}
	return n, p.pos > start
}

// keyword consumes kw if the input continues with it.
func (p *parser) keyword(kw string) bool {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(kw)) {
		return false
	}
	p.pos += len(kw)
	return true
}

// expect consumes c, which may follow separators. A missing c is reported
// on the line of what precedes it, where it belongs.
func (p *parser) expect(c byte) error {
	line := p.line
	p.skipSpace()
	if p.pos == len(p.data) || p.data[p.pos] != c {
		return p.errorf(line, "expected '%c'", c)
	}
	p.pos++
	return nil
}

// skipSpace skips separators: spaces, tabs, CRs, LFs and comments.
func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case '\n':
			p.line++
		case ' ', '\t', '\r':
		case '#':
			for p.pos < len(p.data) && p.data[p.pos] != '\n' {
				p.pos++
			}
			continue
		default:
			return
		}
		p.pos++
	}
}

// skipBlank skips spaces and tabs, the only separators inside a statement.
func (p *parser) skipBlank() {
	for p.pos < len(p.data) && (p.data[p.pos] == ' ' || p.data[p.pos] == '\t') {
		p.pos++
	}
}

// peekWord returns the word at the input position, for error messages.
func (p *parser) peekWord() string {
	end := p.pos
	for end < len(p.data) && end-p.pos < 20 && p.data[end] > ' ' && p.data[end] != ';' {
		end++
	}
	if end == p.pos && end < len(p.data) {
		end++
	}
	return string(p.data[p.pos:end])
}
