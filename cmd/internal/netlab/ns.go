package netlab

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// in runs fn on an OS thread that has entered h's network namespace: the
// sockets fn opens (listen, dial) belong to h for their whole life, and
// may be used from any goroutine after. The thread is never returned to
// the scheduler (the goroutine exits locked, so the runtime ends it), so
// no other goroutine ever runs in h by accident.
func (h *Host) in(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + h.NS)
		if err != nil {
			errc <- fmt.Errorf("netlab: host %s: %w", h.Name, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netlab: enter host %s: %w", h.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Listen opens a TCP listener on h.
func (h *Host) Listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.in(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// DialContext dials from h: a connection as a process on h would open
// it, through h's address, routes and cuts. It suits http.Transport.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return h.dial(ctx, &net.Dialer{}, network, addr)
}

func (h *Host) dial(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.in(func() (err error) {
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
