// Package haproxyimport translates an HAProxy configuration (1.8 to 3.x
// syntax) into a Sluice configuration, reporting every directive it does
// not translate with its line number and the reason.
package haproxyimport

import (
	"fmt"
	"strings"
)

// maxLineBytes bounds one line of the input: HAProxy's own limit is 64 KiB
// (tune.bufsize does not apply to the configuration).
const maxLineBytes = 64 << 10

// File is a parsed HAProxy configuration: its sections in file order.
type File struct {
	Sections []*Section
}

// Section is one of global, defaults, frontend, backend, listen,
// resolvers, userlist, peers, … with the directives it holds.
type Section struct {
	Kind string // "global", "defaults", "frontend", "backend", "listen", ...
	Name string // empty for global and anonymous defaults
	// Args are the words after the name ("from NAME" in HAProxy 2.x/3.x).
	Args []string
	Line int
	// Directives in order; a comment or blank line is not one.
	Directives []Directive
}

// Directive is one configuration line split into words, with its line
// number (1-based).
type Directive struct {
	Line  int
	Words []string
}

// Keyword is the directive's first word.
func (d Directive) Keyword() string { return d.Words[0] }

// String is the directive as written, words joined by single spaces.
func (d Directive) String() string { return strings.Join(d.Words, " ") }

// sectionKinds are the keywords that open a section.
var sectionKinds = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"resolvers": true, "userlist": true, "peers": true, "mailers": true, "program": true,
	"http-errors": true, "ring": true, "cache": true, "fcgi-app": true, "crt-store": true,
	"traces": true, "log-forward": true,
}

// Parse splits data into sections and directives. It follows HAProxy's
// tokenizer: words are separated by blanks, "#" starts a comment outside
// quotes, double and single quotes group words, and a backslash escapes the
// next character ("\ " is a blank inside a word). Directives before the
// first section, unterminated quotes and lines over 64 KiB are errors.
func Parse(data []byte) (*File, error) {
	f := &File{}
	var cur *Section
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if len(line) > maxLineBytes {
			return nil, fmt.Errorf("line %d: longer than %d bytes", n, maxLineBytes)
		}
		words, err := splitWords(strings.TrimSuffix(line, "\r"))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if len(words) == 0 {
			continue
		}
		if sectionKinds[words[0]] {
			cur = &Section{Kind: words[0], Line: n}
			if len(words) > 1 {
				cur.Name = words[1]
				cur.Args = words[2:]
			}
			f.Sections = append(f.Sections, cur)
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: %q outside any section", n, words[0])
		}
		cur.Directives = append(cur.Directives, Directive{Line: n, Words: words})
	}
	return f, nil
}

// unescape maps the character after a backslash: \r, \n and \t are
// control characters (HAProxy 1.8 health checks write headers as
// "HTTP/1.1\r\nHost:\ example.com"); anything else stands for itself.
func unescape(c byte) byte {
	switch c {
	case 'r':
		return '\r'
	case 'n':
		return '\n'
	case 't':
		return '\t'
	}
	return c
}

// splitWords is HAProxy's line tokenizer (see Parse).
func splitWords(line string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool
		quote  byte // 0, '"' or '\''
	)
	flush := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				word.WriteByte(c)
			}
		case c == '\\':
			inWord = true
			if i+1 < len(line) {
				i++
				word.WriteByte(unescape(line[i]))
			}
		case quote == '"':
			if c == '"' {
				quote = 0
			} else {
				word.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == '#':
			flush()
			return words, nil
		case c == ' ' || c == '\t':
			flush()
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	flush()
	return words, nil
}
