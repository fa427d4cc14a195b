// Package chromiumtest opens ragtune's HTML pages in headless Chromium for
// tests (Debian's package, driven through chromedp): a browser with a fresh
// profile and no background networking, and pages whose requests, console
// errors, exceptions and browser log errors (CSP violations) are recorded.
package chromiumtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser starts headless Chromium and returns its context, each page a tab
// of it. The test skips when Chromium is missing, and fails instead under
// RAGTUNE_REQUIRE_SHARED=1 (CI, where scripts/test-deps installs it).
func Browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		msg := "headless Chromium not found (scripts/test-deps installs Debian's chromium)"
		if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height),
		// Without these Chromium calls out at start, and this machine's
		// closed network refuses it.
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("force-color-profile", "srgb"),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatal(err)
	}
	return bctx
}

// Log is what a page did that a test must see.
type Log struct {
	mu       sync.Mutex
	requests []string
	errors   []string
}

// Requests are the URLs the page asked for, the page's own first.
func (l *Log) Requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.requests...)
}

// Errors are console errors and assertions, uncaught exceptions and the
// browser's error log entries (a CSP violation is one).
func (l *Log) Errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...)
}

func (l *Log) listen(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		l.requests = append(l.requests, e.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			l.errors = append(l.errors, "console.error: "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		l.errors = append(l.errors, fmt.Sprintf("exception at %d:%d: %s", d.LineNumber, d.ColumnNumber, text))
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelError {
			l.errors = append(l.errors, "log: "+e.Entry.Text)
		}
	}
}

// Open loads file in a new tab of the browser and waits until the
// JavaScript expression ready is true (the page's script says it is done).
func Open(t *testing.T, browser context.Context, file, ready string) (context.Context, *Log) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	l := &Log{}
	if err := chromedp.Listen(ctx, l.listen); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	defer tcancel()
	err := chromedp.Do(tctx, chromedp.Navigate("file://"+file))
	if err == nil {
		_, err = chromedp.Run(tctx, chromedp.Poll[bool](ready))
	}
	if err != nil {
		t.Fatalf("%s: %v (page errors: %v)", file, err, l.Errors())
	}
	return ctx, l
}
