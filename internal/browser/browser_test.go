package browser_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/internal/browser"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

// A page that changes itself after load: what Eval must see.
const page = `<!doctype html><title>t</title><p id="p">loading</p>
<script>setTimeout(() => { document.getElementById('p').textContent = 'ready ' + (6 * 7) }, 50)</script>`

func TestPage(t *testing.T) {
	if _, err := browser.Binary(); err != nil {
		if dbtest.Strict() {
			t.Fatal(err)
		}
		dbtest.ReportSkip("internal/browser", "chromium", err.Error())
		t.Skip(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, page)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	b, err := browser.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	bin, _ := browser.Binary()
	dbtest.ReportRan("internal/browser", "chromium", bin)
	p, err := b.NewPage(ctx, 800, 600)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Navigate(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}
	g := gomega.NewWithT(t)
	g.Eventually(func() (string, error) {
		var text string
		err := p.Eval(ctx, `document.getElementById('p') ? document.getElementById('p').textContent : ''`, &text)
		return text, err
	}).WithTimeout(20 * time.Second).Should(gomega.Equal("ready 42"))
	if err := p.Eval(ctx, `(() => { throw new Error("boom") })()`, nil); err == nil {
		t.Error("an exception in the page is not an error")
	}
	png, err := p.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	if err := p.Navigate(ctx, "http://127.0.0.1:1/"); err == nil {
		t.Error("navigating to a closed port is not an error")
	}
}
