package database

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgxIOTimeout makes every connection pgx opens bound each read and write
// by timeout (and the dial too): pgx has no read timeout of its own, and
// a statement whose context has no deadline would otherwise wait forever
// on a black-holed connection.
func pgxIOTimeout(timeout time.Duration) stdlib.OptionOpenDB {
	return stdlib.OptionBeforeConnect(func(_ context.Context, cc *pgx.ConnConfig) error {
		// cc is a shallow copy made for this connection: wrapping its
		// DialFunc does not nest across connections.
		cc.DialFunc = dialWithIOTimeout(cc.DialFunc, timeout)
		return nil
	})
}

func dialWithIOTimeout(dial pgconn.DialFunc, timeout time.Duration) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, fmt.Errorf("dial within the I/O timeout %v: %w", timeout, err)
		}
		return &ioTimeoutConn{Conn: c, timeout: timeout}, nil
	}
}

// ioTimeoutConn sets a deadline of timeout from now before each Read and
// Write, or the deadline the driver set (pgx interrupts a cancelled
// statement with SetDeadline) when that is earlier. mu orders the two, so
// that a driver's deadline set during a Read is never overwritten by an
// older computation.
type ioTimeoutConn struct {
	net.Conn
	timeout time.Duration

	mu          sync.Mutex
	driverRead  time.Time // zero: none
	driverWrite time.Time
}

func (c *ioTimeoutConn) Read(b []byte) (int, error) {
	if err := c.arm(c.Conn.SetReadDeadline, &c.driverRead); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *ioTimeoutConn) Write(b []byte) (int, error) {
	if err := c.arm(c.Conn.SetWriteDeadline, &c.driverWrite); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// arm sets the deadline of the next read or write.
func (c *ioTimeoutConn) arm(set func(time.Time) error, driver *time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return set(c.earlier(*driver))
}

func (c *ioTimeoutConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.driverRead, c.driverWrite = t, t
	return c.Conn.SetDeadline(c.earlier(t))
}

func (c *ioTimeoutConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.driverRead = t
	return c.Conn.SetReadDeadline(c.earlier(t))
}

func (c *ioTimeoutConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.driverWrite = t
	return c.Conn.SetWriteDeadline(c.earlier(t))
}

// earlier returns the driver's deadline t, or now+timeout when t is unset
// or later. Called with mu held.
func (c *ioTimeoutConn) earlier(t time.Time) time.Time {
	own := time.Now().Add(c.timeout)
	if t.IsZero() || own.Before(t) {
		return own
	}
	return t
}
