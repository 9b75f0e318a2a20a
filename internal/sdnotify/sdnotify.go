// Package sdnotify tells a service manager (systemd) about the process's
// state with the sd_notify(3) protocol: one datagram of newline-separated
// KEY=VALUE fields sent to the unix socket named by $NOTIFY_SOCKET. Without
// that variable every call is a no-op, so a process started by hand, by an
// init script or by a test that does not listen pays nothing.
//
// The protocol is a few lines of code and stable (systemd's "interface
// portability and stability" promise), so no library is needed for it.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// SocketEnv is the environment variable naming the manager's socket: a
// file system path, or an abstract socket when it begins with '@'.
const SocketEnv = "NOTIFY_SOCKET"

// Notify sends state, one or more KEY=VALUE lines, to $NOTIFY_SOCKET in a
// single datagram. It returns nil without sending anything when the
// variable is unset or empty.
func Notify(state string) error {
	path := os.Getenv(SocketEnv)
	if path == "" {
		return nil
	}
	if path[0] != '/' && path[0] != '@' {
		// systemd 254 and later may also hand out vsock:CID:PORT for
		// a virtual machine's manager; a proxy has no use for it.
		return fmt.Errorf("sdnotify: %s=%q is neither a path nor an abstract socket", SocketEnv, path)
	}
	// Go's unix addresses take a leading '@' as the abstract namespace
	// (a name beginning with a NUL byte), as sd_notify does.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Ready tells the manager that start-up, or a reload, has finished
// (READY=1), with status as the service's status line when not empty.
func Ready(status string) error {
	return Notify(withStatus("READY=1", status))
}

// Reloading tells the manager that a reload begins: RELOADING=1 with
// MONOTONIC_USEC=, the CLOCK_MONOTONIC time in microseconds, which
// Type=notify-reload needs to tell this reload from an earlier one (systemd
// 253 and later), and status when not empty. Where the monotonic clock
// cannot be read, MONOTONIC_USEC= is left out.
func Reloading(status string) error {
	state := "RELOADING=1"
	if usec, err := MonotonicUsec(); err == nil {
		state += "\nMONOTONIC_USEC=" + strconv.FormatUint(usec, 10)
	}
	return Notify(withStatus(state, status))
}

// Stopping tells the manager that the service is stopping (STOPPING=1),
// with status when not empty.
func Stopping(status string) error {
	return Notify(withStatus("STOPPING=1", status))
}

// Status sets the service's status line (STATUS=) alone.
func Status(status string) error {
	return Notify("STATUS=" + statusLine(status))
}

// MainPID tells the manager that pid is the service's main process from
// now on (MAINPID=), as a binary upgrade does when the new process takes
// over; status is sent with it when not empty. Under systemd's default
// NotifyAccess=main only the current main process is heard, so the process
// handing over sends this, before the new one sends READY=1.
func MainPID(pid int, status string) error {
	if pid <= 0 {
		return errors.New("sdnotify: MAINPID must be a process id above 0")
	}
	return Notify(withStatus("MAINPID="+strconv.Itoa(pid), status))
}

// withStatus adds a STATUS= line to state when status is not empty.
func withStatus(state, status string) string {
	if status == "" {
		return state
	}
	return state + "\nSTATUS=" + statusLine(status)
}

// statusLine makes s one line: a newline would end the STATUS= field and
// start a field of its own.
func statusLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
