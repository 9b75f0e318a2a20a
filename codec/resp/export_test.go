package resp

// What the external tests of redis_test.go (package resp_test, which
// imports internal/testservers, itself importing this package) use of
// the internal tests.

// RedisMalformed is one malformed request redis-server refuses as
// ReadRequest does, with the message after "-ERR ".
type RedisMalformed struct{ Name, In, Msg string }

// RedisMalformedRequests are the malformedRequests redis-server refuses
// the same way, at the default limits.
func RedisMalformedRequests() []RedisMalformed {
	var out []RedisMalformed
	for _, tt := range malformedRequests {
		if tt.redis && tt.lim == (Limits{}) {
			out = append(out, RedisMalformed{tt.name, tt.in, tt.msg})
		}
	}
	return out
}

// FeedReplies is feedReplies.
var FeedReplies = feedReplies

// ArgStrings is argStrings.
var ArgStrings = argStrings
