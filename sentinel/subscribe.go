package sentinel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// switchChannel is where a Sentinel announces a master's new address,
// once a failover has ended; promotedChannel is where the Sentinel leading
// a failover announces, earlier, that the replica it chose answers as a
// primary. Following the earlier one shortens the time writes go to a
// primary being demoted (in a failover of a live primary: SENTINEL
// FAILOVER), whose acknowledged writes are then lost.
const (
	switchChannel   = "+switch-master"
	promotedChannel = "+promoted-slave"
	// selectedChannel announces the replica a failover will promote
	// (Options.OnPromoting).
	selectedChannel = "+selected-slave"
)

// abortChannels announce that a failover was given up before its replica
// was promoted (Options.OnAborted): no leader was elected, no replica was
// fit, or the replica selected did not turn primary within the
// failover-timeout.
var abortChannels = []string{"-failover-abort-not-elected", "-failover-abort-no-good-slave", "-failover-abort-slave-timeout"}

// watch keeps a subscription to the Sentinel at addr until Close,
// redialing Retry after each failure. It logs each change between up and
// down once, not every failed attempt.
func (w *Watcher) watch(addr string) {
	defer w.wg.Done()
	warned := false // a failure was logged since the subscription was last up
	for {
		wasUp := false
		err := w.subscribe(addr, func() {
			wasUp, warned = true, false
			w.setUp(addr, true)
			w.log.Info("sentinel: subscription up", "sentinel", addr)
		})
		w.setUp(addr, false)
		if w.ctx.Err() != nil {
			return
		}
		switch {
		case wasUp:
			w.log.Warn("sentinel: subscription down", "sentinel", addr, "err", err, "retry", w.opt.Retry)
			warned = true
		case !warned:
			w.log.Warn("sentinel: cannot subscribe", "sentinel", addr, "err", err, "retry", w.opt.Retry)
			warned = true
		default:
			w.log.Debug("sentinel: cannot subscribe", "sentinel", addr, "err", err)
		}
		if !w.sleep(w.opt.Retry) {
			return
		}
	}
}

// subscribe subscribes to +switch-master on the Sentinel at addr, asks it
// for every master, calls up, and then reports each switch it announces,
// until the connection fails or Close closes it.
func (w *Watcher) subscribe(addr string, up func()) error {
	c, err := dial(w.ctx, addr, &w.opt)
	if err != nil {
		return err
	}
	defer c.close()
	stop := context.AfterFunc(w.ctx, c.close) // unblocks the read below
	defer stop()
	r, err := c.do(w.ctx, append([]string{"SUBSCRIBE", switchChannel, promotedChannel, selectedChannel}, abortChannels...))
	if err != nil {
		return err
	}
	if a, ok := r[0].([]any); !ok || len(a) != 3 || a[0] != "subscribe" {
		return fmt.Errorf("SUBSCRIBE: reply %v", r[0])
	}
	c.nc.SetDeadline(time.Time{}) // announcements may be days apart
	// Subscribed first and asked second, so that no switch falls between.
	if err := w.queryMasters(addr); err != nil {
		return err
	}
	up()
	// A Sentinel that answers nothing (paused, or its host gone) is found
	// by PINGs: the subscription must hear something every silentAfter.
	stopPing := make(chan struct{})
	defer close(stopPing)
	w.wg.Add(1)
	go w.ping(c, stopPing)
	silent := w.opt.Timeout + 3*pingEvery
	for {
		c.nc.SetReadDeadline(time.Now().Add(silent))
		v, err := readReply(c.r)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && w.ctx.Err() == nil {
				return fmt.Errorf("no answer to PING for %v: %w", silent, err)
			}
			return err
		}
		w.onMessage(addr, v)
	}
}

// pingEvery is how often a subscription PINGs its Sentinel.
const pingEvery = time.Second

// ping sends PING on a subscription's connection every pingEvery until
// stop is closed or a write fails (the reader then fails too).
func (w *Watcher) ping(c *conn, stop chan struct{}) {
	defer w.wg.Done()
	frame := resp.AppendCommand(nil, []byte("PING"))
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
		c.nc.SetWriteDeadline(time.Now().Add(w.opt.Timeout))
		if _, err := c.nc.Write(frame); err != nil {
			return
		}
	}
}

// queryMasters asks the Sentinel at addr for every master; an answer that
// differs from the address reported makes every Sentinel be asked
// (Requery): one Sentinel alone never moves a master. A Sentinel that does
// not know a master is logged; only a failed connection is an error.
func (w *Watcher) queryMasters(addr string) error {
	return w.askOne(w.ctx, addr, func(ctx context.Context, c *conn) error {
		for _, m := range w.opt.Masters {
			ans, err := c.masterAddr(ctx, m)
			var re replyError
			switch {
			case errors.Is(err, ErrUnknownMaster) || errors.As(err, &re):
				w.log.Warn("sentinel: cannot ask for master", "sentinel", addr, "master", m, "err", err)
			case err != nil:
				return fmt.Errorf("master %s: %w", m, err)
			case ans.addr != w.knownAddr(m):
				w.log.Debug("sentinel: answer differs from the address reported: asking every Sentinel",
					"sentinel", addr, "master", m, "addr", ans.addr, "epoch", ans.epoch)
				w.Requery(m)
			}
		}
		return nil
	})
}

// onMessage handles one reply on the subscription to the Sentinel at
// addr: a +switch-master or +promoted-slave message is reported once its
// address passes Options.CheckPrimary (else every Sentinel is asked), a
// +selected-slave goes to OnPromoting and an abort to OnAborted; anything
// else is ignored.
func (w *Watcher) onMessage(addr string, v any) {
	a, ok := v.([]any)
	if !ok || len(a) != 3 || a[0] != "message" {
		return
	}
	channel, _ := a[1].(string)
	payload, _ := a[2].(string)
	parse := parseSwitch
	switch {
	case channel == switchChannel:
	case channel == promotedChannel || channel == selectedChannel:
		parse = parsePromoted
	case slices.Contains(abortChannels, channel):
		parse = parseMasterEvent
	default:
		return
	}
	master, oldAddr, newAddr, err := parse(payload)
	if err != nil {
		w.log.Warn("sentinel: bad message", "sentinel", addr, "channel", channel, "err", err)
		return
	}
	if !w.masters[master] {
		return
	}
	w.log.Debug("sentinel: "+channel, "sentinel", addr, "master", master, "old", oldAddr, "new", newAddr)
	switch channel {
	case selectedChannel:
		if w.opt.OnPromoting != nil {
			w.opt.OnPromoting(master, newAddr)
		}
		return
	case switchChannel, promotedChannel:
	default:
		w.log.Warn("sentinel: failover aborted", "sentinel", addr, "master", master, "event", channel)
		if w.opt.OnAborted != nil {
			w.opt.OnAborted(master)
		}
		w.Requery(master)
		return
	}
	if newAddr != w.knownAddr(master) && w.opt.CheckPrimary != nil {
		ctx, cancel := context.WithTimeout(w.ctx, w.opt.Timeout)
		err := w.opt.CheckPrimary(ctx, master, newAddr)
		cancel()
		if err != nil {
			w.log.Warn("sentinel: the address announced is not a primary: asking every Sentinel", "sentinel", addr,
				"master", master, "addr", newAddr, "channel", channel, "err", err)
			w.Requery(master)
			return
		}
	}
	w.report(master, answer{addr: newAddr, epoch: -1}, fromSwitch, 0, channel+" from "+addr)
}

// parseMasterEvent reads the payload of an event about a master, such as
// -failover-abort-slave-timeout: "master <name> <ip> <port>".
func parseMasterEvent(payload string) (master, oldAddr, newAddr string, err error) {
	f := strings.Split(payload, " ")
	if len(f) < 4 || f[0] != "master" || f[1] == "" {
		return "", "", "", fmt.Errorf("payload %q is not master <name> <ip> <port>", payload)
	}
	return f[1], "", net.JoinHostPort(f[2], f[3]), nil
}

// parsePromoted reads the payload of a +promoted-slave message:
// "slave <ip>:<port> <ip> <port> @ <master name> <master ip> <master port>".
func parsePromoted(payload string) (master, oldAddr, newAddr string, err error) {
	f := strings.Split(payload, " ")
	if len(f) != 8 || f[0] != "slave" || f[4] != "@" || f[2] == "" || f[3] == "" || f[5] == "" {
		return "", "", "", fmt.Errorf("payload %q is not slave <ip:port> <ip> <port> @ <master> <ip> <port>", payload)
	}
	return f[5], net.JoinHostPort(f[6], f[7]), net.JoinHostPort(f[2], f[3]), nil
}

// parseSwitch reads the payload of a +switch-master message:
// "<master name> <old ip> <old port> <new ip> <new port>".
func parseSwitch(payload string) (master, oldAddr, newAddr string, err error) {
	f := strings.Split(payload, " ")
	if len(f) != 5 || f[0] == "" || f[3] == "" || f[4] == "" {
		return "", "", "", fmt.Errorf("payload %q is not <master> <old ip> <old port> <new ip> <new port>", payload)
	}
	return f[0], net.JoinHostPort(f[1], f[2]), net.JoinHostPort(f[3], f[4]), nil
}
