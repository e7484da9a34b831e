// Package browser drives a headless Chromium for tests: Debian's chromium
// package (scripts/install-chromium.sh), spoken to with the DevTools
// protocol over the pipe Chromium opens with --remote-debugging-pipe
// (file descriptors 3 and 4, one JSON message per NUL-terminated frame). No
// port, no WebSocket and no third-party module: a test needs four commands
// (open a page, navigate, evaluate, screenshot), which are below.
//
// Every browser runs with a fresh profile directory, removed by Close, and
// the flags a sandboxed CI machine needs (see Flags). Close ends the
// process and the goroutine reading its pipe.
package browser

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Flags are the command-line flags every browser starts with, besides a
// fresh --user-data-dir and --remote-debugging-pipe: headless, no sandbox
// (containers run as root), and nothing that reaches the network on its own.
var Flags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
}

// ErrClosed: the browser exited or was closed.
var ErrClosed = errors.New("browser: closed")

// Binary returns the Chromium executable, or why there is none.
func Binary() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	// Debian's path, for a PATH without /usr/bin.
	if p, err := exec.LookPath("/usr/bin/chromium"); err == nil {
		return p, nil
	}
	return "", errors.New("chromium not installed (Debian package chromium; run scripts/install-chromium.sh)")
}

// Browser is one Chromium process.
type Browser struct {
	cmd    *exec.Cmd
	dir    string
	stderr *bytes.Buffer // Chromium's own log, for errors
	toB    *os.File      // our end of its fd 3
	fromB  *os.File      // our end of its fd 4
	exited chan struct{} // closed when cmd is reaped
	read   chan struct{} // closed when the pipe reader returned

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan reply
	err     error // why the pipe ended
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Start starts Chromium with Flags and a fresh profile.
func Start(ctx context.Context) (*Browser, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "admin-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser: profile directory: %w", err)
	}
	// Chromium reads commands from fd 3 and writes replies to fd 4.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("browser: pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, errors.Join(fmt.Errorf("browser: pipe: %w", err), cmdR.Close(), cmdW.Close())
	}
	args := append(append([]string{}, Flags...), "--user-data-dir="+dir, "--remote-debugging-pipe", "about:blank")
	cmd := exec.Command(bin, args...)
	b := &Browser{cmd: cmd, dir: dir, stderr: new(bytes.Buffer), toB: cmdW, fromB: outR,
		exited: make(chan struct{}), read: make(chan struct{}), pending: map[int64]chan reply{}}
	cmd.Stdout, cmd.Stderr = io.Discard, &lockedWriter{w: b.stderr, mu: &b.mu}
	cmd.ExtraFiles = []*os.File{cmdR, outW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, errors.Join(fmt.Errorf("browser: start %s: %w", bin, err), cmdR.Close(), cmdW.Close(), outR.Close(), outW.Close())
	}
	_, _ = cmdR.Close(), outW.Close() // the child holds its own copies
	go func() {
		_ = cmd.Wait()
		close(b.exited)
	}()
	go b.readLoop()
	// The first command answers once the browser is up.
	if _, err := b.call(ctx, "", "Browser.getVersion", nil); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	return b, nil
}

// readLoop hands each reply to its caller until the pipe ends. Events
// (messages without an id) are not needed by the tests and are dropped.
func (b *Browser) readLoop() {
	defer close(b.read)
	r := bufio.NewReaderSize(b.fromB, 1<<20)
	var err error
	for {
		var frame []byte
		if frame, err = r.ReadBytes(0); err != nil {
			break
		}
		var msg struct {
			ID int64 `json:"id"`
			reply
		}
		if json.Unmarshal(frame[:len(frame)-1], &msg) != nil || msg.ID == 0 {
			continue
		}
		b.mu.Lock()
		ch := b.pending[msg.ID]
		delete(b.pending, msg.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- msg.reply
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = fmt.Errorf("%w: the DevTools pipe ended (%v); chromium said: %s", ErrClosed, err, tail(b.stderr.String(), 2000))
	for id, ch := range b.pending {
		delete(b.pending, id)
		close(ch)
	}
}

// call sends one command (to a page's session, or to the browser when
// session is empty) and waits for its reply or ctx.
func (b *Browser) call(ctx context.Context, session, method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return nil, err
	}
	b.nextID++
	id := b.nextID
	ch := make(chan reply, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if session != "" {
		msg["sessionId"] = session
	}
	if params != nil {
		msg["params"] = params
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("browser: %s: %w", method, err)
	}
	if _, err := b.toB.Write(append(data, 0)); err != nil {
		return nil, fmt.Errorf("browser: send %s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			b.mu.Lock()
			defer b.mu.Unlock()
			return nil, fmt.Errorf("browser: %s: %w", method, b.err)
		}
		if r.Error != nil {
			return nil, fmt.Errorf("browser: %s: %s (code %d)", method, r.Error.Message, r.Error.Code)
		}
		return r.Result, nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return nil, fmt.Errorf("browser: %s: %w", method, context.Cause(ctx))
	}
}

// Page is one tab.
type Page struct {
	b       *Browser
	session string
}

// NewPage opens a blank tab of width x height CSS pixels.
func (b *Browser) NewPage(ctx context.Context, width, height int) (*Page, error) {
	res, err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"})
	if err != nil {
		return nil, err
	}
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := json.Unmarshal(res, &target); err != nil {
		return nil, fmt.Errorf("browser: Target.createTarget: %w", err)
	}
	res, err = b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true})
	if err != nil {
		return nil, err
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(res, &att); err != nil {
		return nil, fmt.Errorf("browser: Target.attachToTarget: %w", err)
	}
	p := &Page{b: b, session: att.SessionID}
	if _, err := b.call(ctx, p.session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}); err != nil {
		return nil, err
	}
	return p, nil
}

// Navigate loads url; it returns once the navigation committed (not when
// the page finished loading: wait for what the test needs with Eval).
func (p *Page) Navigate(ctx context.Context, url string) error {
	res, err := p.b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url})
	if err != nil {
		return err
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := json.Unmarshal(res, &nav); err != nil {
		return fmt.Errorf("browser: Page.navigate: %w", err)
	}
	if nav.ErrorText != "" {
		return fmt.Errorf("browser: navigate to %s: %s", url, nav.ErrorText)
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its JSON value into into (which may be nil).
func (p *Page) Eval(ctx context.Context, expr string, into any) error {
	res, err := p.b.call(ctx, p.session, "Runtime.evaluate",
		map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	if err != nil {
		return err
	}
	var ev struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &ev); err != nil {
		return fmt.Errorf("browser: Runtime.evaluate: %w", err)
	}
	if ev.Exception != nil {
		return fmt.Errorf("browser: evaluate %q: %s %s", expr, ev.Exception.Text, ev.Exception.Exception.Description)
	}
	if into == nil || len(ev.Result.Value) == 0 {
		return nil
	}
	if err := json.Unmarshal(ev.Result.Value, into); err != nil {
		return fmt.Errorf("browser: evaluate %q: decode %s: %w", expr, ev.Result.Value, err)
	}
	return nil
}

// Screenshot returns a PNG of the whole page, beyond the viewport too.
func (p *Page) Screenshot(ctx context.Context) ([]byte, error) {
	res, err := p.b.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true})
	if err != nil {
		return nil, err
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(res, &shot); err != nil {
		return nil, fmt.Errorf("browser: Page.captureScreenshot: %w", err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return nil, fmt.Errorf("browser: Page.captureScreenshot: %w", err)
	}
	return png, nil
}

// closeGrace is how long Close waits for Chromium to exit by itself.
const closeGrace = 5 * time.Second

// Close asks the browser to exit, kills it if it has not within a few
// seconds, waits for it and its pipe reader, and removes its profile.
func (b *Browser) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	_, _ = b.call(ctx, "", "Browser.close", nil) // the pipe may end before the reply
	select {
	case <-b.exited:
	case <-ctx.Done():
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.exited
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL) // helpers left in its group
	err := b.toB.Close()
	<-b.read
	return errors.Join(err, b.fromB.Close(), os.RemoveAll(b.dir))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
