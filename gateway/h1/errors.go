package h1

import "errors"

// Error is a request the parser refuses, with the status to answer it and
// the reason, which is also the body of the answer. Each Error is one of
// the package's sentinels below, so callers classify with errors.Is.
type Error struct {
	Status int    // 400, 414 or 431
	Reason string // what was wrong, e.g. "obs-fold (header line continued with whitespace)"
}

func (e *Error) Error() string { return "h1: " + e.Reason }

// ErrIncomplete is returned by ParseHead while buf holds no complete head
// and is still within the limits: read more and call again.
var ErrIncomplete = errors.New("h1: request head incomplete")

// The parser's refusals.
var (
	ErrHeadTooLarge     = &Error{431, "request header fields too large"}
	ErrTooManyFields    = &Error{431, "too many header fields"}
	ErrTargetTooLong    = &Error{414, "request target too long"}
	ErrBareLF           = &Error{400, "bare LF line ending"}
	ErrRequestLine      = &Error{400, "malformed request line"}
	ErrMethod           = &Error{400, "invalid method"}
	ErrTarget           = &Error{400, "invalid request target"}
	ErrVersion          = &Error{400, "unsupported HTTP version"}
	ErrObsFold          = &Error{400, "obs-fold (header line continued with whitespace)"}
	ErrFieldLine        = &Error{400, "malformed header line"}
	ErrSpaceBeforeColon = &Error{400, "whitespace in header name"}
	ErrFieldName        = &Error{400, "invalid byte in header name"}
	ErrFieldValue       = &Error{400, "control character in header"}
	ErrHost             = &Error{400, "missing, repeated or invalid Host"}
	ErrContentLength    = &Error{400, "invalid Content-Length"}
	ErrConflictingCL    = &Error{400, "conflicting Content-Length values"}
	ErrTEWithCL         = &Error{400, "both Content-Length and Transfer-Encoding"}
	ErrTransferEncoding = &Error{400, "Transfer-Encoding other than chunked"}
	ErrRepeatedTE       = &Error{400, "repeated Transfer-Encoding"}
	ErrTEOnHTTP10       = &Error{400, "Transfer-Encoding on an HTTP/1.0 request"}
	ErrChunkSize        = &Error{400, "invalid chunk size"}
	ErrChunkExtension   = &Error{400, "invalid or oversized chunk extension"}
	ErrChunkLineTooLong = &Error{400, "chunk line too long"}
	ErrChunkCRLF        = &Error{400, "chunk data not followed by CRLF"}
	ErrChunkBareLF      = &Error{400, "bare LF in chunked body"}
	ErrTrailer          = &Error{400, "malformed or oversized trailer section"}
)
