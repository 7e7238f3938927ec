package h1

import "errors"

// Error is a request the parser refuses, with the status to answer it and
// the reason, which is also the body of the answer. Each Error is one of
// the package's sentinels below, so callers classify with errors.Is, or
// by Class, which groups them coarsely enough for a metric label.
type Error struct {
	Status int    // 400, 414 or 431
	Reason string // what was wrong, e.g. "obs-fold (header line continued with whitespace)"
	Class  string // one of the Class constants
}

// Classes of refusal, a small fixed set (the gateway's
// sluice_client_rejected_total reasons).
const (
	ClassHeaderTooLarge   = "header_too_large"  // 431: head over MaxHeadBytes
	ClassTooManyHeaders   = "too_many_headers"  // 431: more than MaxFields fields
	ClassURITooLong       = "uri_too_long"      // 414: target over MaxTargetBytes
	ClassRequestLine      = "bad_request_line"  // malformed method, target, version or request line
	ClassInvalidHeader    = "invalid_header"    // malformed field line or Host, invalid bytes, obs-fold, bare LF
	ClassContentLength    = "content_length"    // malformed or conflicting Content-Length
	ClassTransferEncoding = "transfer_encoding" // Transfer-Encoding not a lone final chunked, or with Content-Length
	ClassChunk            = "bad_chunk"         // chunked body or trailer section malformed
)

func (e *Error) Error() string { return "h1: " + e.Reason }

// ErrIncomplete is returned by ParseHead while buf holds no complete head
// and is still within the limits: read more and call again.
var ErrIncomplete = errors.New("h1: request head incomplete")

// The parser's refusals.
var (
	ErrHeadTooLarge     = &Error{431, "request header fields too large", ClassHeaderTooLarge}
	ErrTooManyFields    = &Error{431, "too many header fields", ClassTooManyHeaders}
	ErrTargetTooLong    = &Error{414, "request target too long", ClassURITooLong}
	ErrBareLF           = &Error{400, "bare LF line ending", ClassInvalidHeader}
	ErrRequestLine      = &Error{400, "malformed request line", ClassRequestLine}
	ErrMethod           = &Error{400, "invalid method", ClassRequestLine}
	ErrTarget           = &Error{400, "invalid request target", ClassRequestLine}
	ErrVersion          = &Error{400, "unsupported HTTP version", ClassRequestLine}
	ErrObsFold          = &Error{400, "obs-fold (header line continued with whitespace)", ClassInvalidHeader}
	ErrFieldLine        = &Error{400, "malformed header line", ClassInvalidHeader}
	ErrSpaceBeforeColon = &Error{400, "whitespace in header name", ClassInvalidHeader}
	ErrFieldName        = &Error{400, "invalid byte in header name", ClassInvalidHeader}
	ErrFieldValue       = &Error{400, "control character in header", ClassInvalidHeader}
	ErrHost             = &Error{400, "missing, repeated or invalid Host", ClassInvalidHeader}
	ErrContentLength    = &Error{400, "invalid Content-Length", ClassContentLength}
	ErrConflictingCL    = &Error{400, "conflicting Content-Length values", ClassContentLength}
	ErrTEWithCL         = &Error{400, "both Content-Length and Transfer-Encoding", ClassTransferEncoding}
	ErrTransferEncoding = &Error{400, "Transfer-Encoding other than chunked", ClassTransferEncoding}
	ErrRepeatedTE       = &Error{400, "repeated Transfer-Encoding", ClassTransferEncoding}
	ErrTEOnHTTP10       = &Error{400, "Transfer-Encoding on an HTTP/1.0 request", ClassTransferEncoding}
	ErrChunkSize        = &Error{400, "invalid chunk size", ClassChunk}
	ErrChunkExtension   = &Error{400, "invalid or oversized chunk extension", ClassChunk}
	ErrChunkLineTooLong = &Error{400, "chunk line too long", ClassChunk}
	ErrChunkCRLF        = &Error{400, "chunk data not followed by CRLF", ClassChunk}
	ErrChunkBareLF      = &Error{400, "bare LF in chunked body", ClassChunk}
	ErrTrailer          = &Error{400, "malformed or oversized trailer section", ClassChunk}
)
