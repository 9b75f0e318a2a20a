package memcache

import "math"

// The checks below follow memcached 1.6's proto_text.c in their order and
// wording: which error a request gets, whether "noreply" silences it, and
// whether a data block is read, swallowed or left to be parsed as commands.

// isNoReply reports whether tok is the "noreply" option.
func isNoReply(tok []byte) bool { return string(tok) == "noreply" }

// addKey appends key to req.Keys and reports whether memcached accepts its
// length.
func addKey(req *Request, key []byte) bool {
	req.Keys = append(req.Keys, key)
	return len(key) <= MaxKeyLen
}

// parseRetrieval reads the keys (and the exptime of gat and gats) of a
// retrieval line. memcached re-splits lines of more than 23 tokens, so every
// token after the command is a key.
func parseRetrieval(text []byte, req *Request, lim Limits) error {
	_, i := nextToken(text, 0)
	if req.Cmd.has(attrExptime) {
		req.Exptime, i = nextToken(text, i)
		if _, ok := parseInt64(req.Exptime); !ok {
			return reject(replyBadExptime, false)
		}
	}
	for {
		var key []byte
		key, i = nextToken(text, i)
		if key == nil {
			return nil
		}
		if len(req.Keys) == lim.MaxKeys {
			return reject(replyTooManyKeys, false)
		}
		if !addKey(req, key) {
			return reject(replyBadFormat, false)
		}
	}
}

// parseStorage checks a set, add, replace, append, prepend or cas line
// ("<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]") and reads its
// data block. A bad line is answered without reading the block: memcached
// then parses the block's bytes as commands, and so will the caller.
func parseStorage(b []byte, n int, args [][]byte, req *Request, lim Limits) (int, error) {
	req.NoReply = isNoReply(args[len(args)-1])
	okKey := addKey(req, args[1])
	_, okFlags := parseUint32(args[2])
	_, okExp := parseInt64(args[3])
	size, okSize := parseInt32(args[4])
	okCas := true
	if req.Cmd == CmdCas {
		_, okCas = parseUint64(args[5])
	}
	if !okKey || !okFlags || !okExp || !okSize || !okCas || size < 0 || size > math.MaxInt32-2 {
		return n, reject(replyBadFormat, req.NoReply)
	}
	return readData(b, n, int(size), req, lim, req.NoReply)
}

// readData reads the data block of size bytes plus "\r\n" that follows the
// line ending at b[n].
func readData(b []byte, n, size int, req *Request, lim Limits, noreply bool) (int, error) {
	if size > lim.MaxValue {
		return n, &Error{Reply: replyTooLarge, NoReply: noreply, Swallow: size + 2}
	}
	end := n + size + 2
	if len(b) < end {
		return 0, nil
	}
	if b[end-2] != '\r' || b[end-1] != '\n' {
		return end, reject(replyBadChunk, noreply)
	}
	req.Data = b[n : n+size : n+size]
	return end, nil
}

// parseMeta checks a meta command's line ("<cmd> <key> [<datalen>] <flag>*")
// as far as framing and routing need, and reads the data block of ms. Flags
// are left to memcached: it answers a bad one once (and swallows the data
// block of an ms), so forwarding such a request keeps the stream in step.
// memcached answers errors of meta commands even with the q flag.
func parseMeta(b []byte, n int, args [][]byte, count int, req *Request, lim Limits) (int, error) {
	if req.Cmd == CmdMn {
		return n, nil
	}
	if !addKey(req, args[1]) {
		return n, reject(replyBadFormat, false)
	}
	flags, size := args[2:], int32(0)
	if req.Cmd == CmdMs {
		var ok bool
		switch {
		case count == 2:
			return n, reject(replyBadFormat, false)
		case count >= 20:
			return n, reject(replyFlagsTooLong, false)
		}
		if size, ok = parseInt32(args[2]); !ok || size < 0 || size > math.MaxInt32-2 {
			return n, reject(replyBadFormat, false)
		}
		flags = args[3:]
	}
	for _, f := range flags {
		switch f[0] {
		case 'q':
			req.Quiet = true
		case 'b':
			req.Base64Key = true
		}
	}
	if req.Cmd == CmdMs {
		return readData(b, n, int(size), req, lim, false)
	}
	return n, nil
}

// parseSimple checks the one-line commands other than retrievals.
func parseSimple(args [][]byte, req *Request) error {
	last := args[len(args)-1]
	switch req.Cmd {
	case CmdIncr, CmdDecr, CmdTouch:
		req.NoReply = isNoReply(last)
		if !addKey(req, args[1]) {
			return reject(replyBadFormat, req.NoReply)
		}
		if req.Cmd == CmdTouch {
			if _, ok := parseInt64(args[2]); !ok {
				return reject(replyBadExptime, req.NoReply)
			}
		} else if _, ok := parseUint64(args[2]); !ok {
			return reject(replyBadDelta, req.NoReply)
		}
	case CmdDelete:
		return checkDelete(args, req)
	case CmdVerbosity:
		req.NoReply = isNoReply(last)
		if _, ok := parseUint32(args[1]); !ok {
			return reject(replyBadFormat, req.NoReply)
		}
	case CmdFlushAll:
		req.NoReply = isNoReply(last)
		plain := 1 // tokens without an exptime
		if req.NoReply {
			plain = 2
		}
		if len(args) != plain {
			if _, ok := parseInt64(args[1]); !ok {
				return reject(replyBadExptime, req.NoReply)
			}
		}
	}
	return nil
}

// checkDelete checks "delete <key> [0] [noreply]": memcached still accepts
// the old hold time, if it is 0, and reads "noreply" only after the key.
func checkDelete(args [][]byte, req *Request) error {
	if len(args) > 2 {
		holdZero := string(args[2]) == "0"
		req.NoReply = isNoReply(args[len(args)-1])
		valid := (len(args) == 3 && (holdZero || req.NoReply)) ||
			(len(args) == 4 && holdZero && req.NoReply)
		if !valid {
			return reject(replyBadDelete, req.NoReply)
		}
	}
	if !addKey(req, args[1]) {
		return reject(replyBadFormat, req.NoReply)
	}
	return nil
}
