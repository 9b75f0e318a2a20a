package memcache

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzLimits are small limits that let the fuzzer reach every bound.
var fuzzLimits = Limits{MaxKeys: 4, MaxValue: 64, MaxLine: 48}

func FuzzReadRequest(f *testing.F) {
	for _, tc := range goodRequests {
		f.Add([]byte(tc.in), false)
		f.Add([]byte(tc.in), true)
	}
	for _, tc := range malformedRequests {
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in), tc.lim == small)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, useSmall bool) {
		lim := Limits{}
		if useSmall {
			lim = fuzzLimits
		}
		var req Request
		n, err := ReadRequest(data, &req, lim)
		if n < 0 || n > len(data) {
			t.Fatalf("n = %d for %d bytes", n, len(data))
		}
		var rerr *Error
		switch {
		case err != nil && !errors.As(err, &rerr):
			t.Fatalf("error %v is not an *Error", err)
		case rerr != nil && (rerr.Reply == "" || rerr.Swallow < 0 || (rerr.Close && n != 0)):
			t.Fatalf("bad error %#v with n = %d", rerr, n)
		case err == nil && n > 0:
			checkRequest(t, data[:n], &req, lim)
		}
		checkPrefixesEvery(t, data, lim, 1+len(data)/128)
	})
}

// checkRequest checks what ReadRequest filled in for the frame.
func checkRequest(t *testing.T, frame []byte, req *Request, lim Limits) {
	t.Helper()
	if req.Cmd == CmdUnknown || bytes.IndexByte(req.Line, '\n') >= 0 || !bytes.HasPrefix(frame, req.Line) {
		t.Fatalf("frame %q: cmd %v line %q", frame, req.Cmd, req.Line)
	}
	if len(req.Keys) > lim.withDefaults().MaxKeys {
		t.Fatalf("frame %q: %d keys", frame, len(req.Keys))
	}
	for _, k := range req.Keys {
		if len(k) == 0 || len(k) > MaxKeyLen || bytes.IndexByte(k, ' ') >= 0 || bytes.IndexByte(k, 0) >= 0 {
			t.Fatalf("frame %q: bad key %q", frame, k)
		}
	}
	if req.Cmd.Storage() && !bytes.HasSuffix(frame, append(req.Data[:len(req.Data):len(req.Data)], "\r\n"...)) {
		t.Fatalf("frame %q: data %q", frame, req.Data)
	}
}

func FuzzReadReply(f *testing.F) {
	for _, tc := range goodReplies {
		f.Add([]byte(tc.in), uint8(tc.cmd))
	}
	f.Add([]byte("VALUE a 0 1\r\nx\r\nVALUE b 0 0\r\n\r\nEND\r\n"), uint8(CmdGets))
	f.Fuzz(func(t *testing.T, data []byte, c uint8) {
		cmd := Command(c % uint8(numCommands))
		n, err := ReadReply(data, cmd)
		if n < 0 || n > len(data) || (err != nil && (n != 0 || !errors.Is(err, ErrProtocol))) {
			t.Fatalf("ReadReply(%q, %v) = %d, %v", data, cmd, n, err)
		}
		stride := 1 + len(data)/128
		for k := 0; k < len(data); k++ {
			if k%stride != 0 && (k < n-1 || k > n+1) {
				continue
			}
			pn, perr := ReadReply(data[:k], cmd)
			switch {
			case k < n && (pn != 0 || perr != nil):
				t.Fatalf("prefix %d of %q: %d, %v; whole: %d", k, data, pn, perr, n)
			case n > 0 && k >= n && (pn != n || perr != nil):
				t.Fatalf("prefix %d of %q: %d, %v; whole: %d", k, data, pn, perr, n)
			case n == 0 && err == nil && (pn != 0 || perr != nil):
				t.Fatalf("prefix %d of %q: %d, %v; whole needs more", k, data, pn, perr)
			}
		}
		key, vn, ok, verr := ReadValue(data)
		if vn < 0 || vn > len(data) || (ok && (len(key) == 0 || verr != nil)) || (verr != nil && !errors.Is(verr, ErrProtocol)) {
			t.Fatalf("ReadValue(%q) = %q, %d, %v, %v", data, key, vn, ok, verr)
		}
	})
}
