package proxy

import (
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/pools"
)

// pubsubInfo answers PUBSUB: CHANNELS and SHARDCHANNELS merged from every
// server, NUMSUB and SHARDNUMSUB from each channel's server, NUMPAT the
// most any server has (every pattern is subscribed on every server), in
// a cluster pool the sum over the primaries (a pattern is subscribed on
// one node, the same for every client), and NUMSUB too (a channel's
// subscription stays on its node when the channel's slot moves).
func (r *redisProto) pubsubInfo(cl *client, bt *batch, args [][]byte) {
	sub := strings.ToUpper(string(args[1]))
	rt := bt.rt
	switch sub {
	case "CHANNELS", "SHARDCHANNELS":
		if len(args) > 3 {
			errorReply(bt, fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%s'. Try PUBSUB HELP.", resp.Clip(args[1])))
			return
		}
		seen := map[string]bool{}
		var all [][]byte
		for _, srv := range rt.servers {
			v, err := askServer(cl, srv, args)
			if err != nil {
				errorReply(bt, "ERR "+err.Error())
				return
			}
			for _, e := range v.Elems {
				if !seen[string(e.Str)] {
					seen[string(e.Str)] = true
					all = append(all, e.Str)
				}
			}
		}
		dst := resp.AppendArray(nil, len(all))
		for _, c := range all {
			dst = resp.AppendBulk(dst, c)
		}
		localReply(bt, dst)
	case "NUMSUB", "SHARDNUMSUB":
		if rt.slots != nil && sub == "NUMSUB" {
			r.clusterNumsub(cl, bt, args)
			return
		}
		dst := resp.AppendArray(nil, 2*(len(args)-2))
		for _, ch := range args[2:] {
			i := rt.locate(ch)
			var n int64
			if i >= 0 {
				v, err := askServer(cl, rt.servers[i], [][]byte{args[0], args[1], ch})
				if err != nil {
					errorReply(bt, "ERR "+err.Error())
					return
				}
				if len(v.Elems) == 2 {
					n = v.Elems[1].Int
				}
			}
			dst = resp.AppendInt(resp.AppendBulk(dst, ch), n)
		}
		localReply(bt, dst)
	case "NUMPAT":
		if len(args) != 2 {
			errorReply(bt, "ERR wrong number of arguments for 'pubsub|numpat' command")
			return
		}
		// Every server has every pattern; a cluster's nodes each have
		// their own (subscriber.servers).
		var most, sum int64
		for _, srv := range rt.servers {
			v, err := askServer(cl, srv, args)
			if err != nil {
				errorReply(bt, "ERR "+err.Error())
				return
			}
			most, sum = max(most, v.Int), sum+v.Int
		}
		if rt.slots != nil {
			most = sum
		}
		localReply(bt, resp.AppendInt(nil, most))
	default:
		if len(rt.servers) == 0 {
			r.noServer(bt)
			return
		}
		v, err := askServer(cl, rt.servers[0], args)
		if err != nil {
			errorReply(bt, "ERR "+err.Error())
			return
		}
		localReply(bt, v.Raw)
	}
}

// asked is a server's reply to askServer: decoded, and its bytes.
type asked struct {
	resp.Value
	Raw []byte
}

// askServer sends one command to srv on a session connection and returns
// its reply.
func askServer(cl *client, srv *pools.Server, args [][]byte) (asked, error) {
	conn, err := srv.Session(cl.resp3)
	if err != nil {
		return asked{}, err
	}
	if err := conn.Write(resp.AppendCommand(nil, args...)); err != nil {
		conn.Close()
		return asked{}, err
	}
	rep, err := conn.ReadReply()
	if err != nil {
		conn.Close()
		return asked{}, err
	}
	raw := append([]byte(nil), rep...)
	conn.Release()
	v, _, err := resp.ParseValue(raw)
	if err != nil {
		return asked{}, err
	}
	return asked{v, raw}, nil
}
