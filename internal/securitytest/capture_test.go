package securitytest

import (
	"bytes"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/internal/cli"
)

// secrets are the markers a test plants. Each is "MARKER" followed by its
// kind and a random word of the letters g to z, which the error grouping
// of alerts leaves alone: it rewrites numbers and hex words, and would
// hide a marker that held them.
type secrets struct {
	payload       string // in the data of events
	metadata      string // in a metadata value of a message
	password      string // the broker's password, in its URL
	wrongPassword string // a password the broker rejects
	hook          string // in the path of the Slack and webhook URLs
	routingKey    string // the PagerDuty routing key

	// errorCanary is in the handlers' error messages. It is no secret: the
	// tests check that it reaches each output, so that an output that
	// captured nothing cannot pass for one without secrets.
	errorCanary string
}

func newSecrets() secrets {
	word := randomLetters(16)
	return secrets{
		payload:       "MARKERpayload" + word,
		metadata:      "MARKERmetadata" + word,
		password:      "MARKERpassword" + word,
		wrongPassword: "MARKERwrong" + word,
		hook:          "MARKERhook" + word,
		routingKey:    "MARKERroutingkey" + word,
		errorCanary:   "canary" + word,
	}
}

// all returns the secrets by name.
func (s secrets) all() map[string]string {
	return map[string]string{
		"event payload": s.payload, "metadata value": s.metadata, "broker password": s.password,
		"wrong broker password": s.wrongPassword, "webhook URL": s.hook, "PagerDuty routing key": s.routingKey,
	}
}

// randomLetters returns n random letters from g to z.
func randomLetters(n int) string {
	const letters = "ghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// transcript collects every text a run produced, by where it appeared.
type transcript struct {
	mu    sync.Mutex
	texts map[string]*strings.Builder
	order []string
}

func newTranscript() *transcript {
	return &transcript{texts: map[string]*strings.Builder{}}
}

func (tr *transcript) add(where, text string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	b, ok := tr.texts[where]
	if !ok {
		b = &strings.Builder{}
		tr.texts[where] = b
		tr.order = append(tr.order, where)
	}
	b.WriteString(text)
	b.WriteString("\n")
}

// addError records err's message, or fails when there is none.
func (tr *transcript) addError(t *testing.T, where string, err error) {
	t.Helper()
	require.Error(t, err, "%s: expected an error", where)
	tr.add(where, err.Error())
}

func (tr *transcript) text(where string) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if b, ok := tr.texts[where]; ok {
		return b.String()
	}
	return ""
}

// requireNoSecrets fails for each text that contains a secret, unless the
// text's name is listed for that secret in allowed.
func (tr *transcript) requireNoSecrets(t *testing.T, s secrets, allowed map[string][]string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	require.NotEmpty(t, tr.order, "nothing was captured")
	for _, where := range tr.order {
		text := tr.texts[where].String()
		for kind, secret := range s.all() {
			if slices.Contains(allowed[secret], where) {
				continue
			}
			require.NotContains(t, text, secret, "%s shows the %s", where, kind)
		}
	}
}

// requireCanary fails unless each named text contains the handlers' error
// canary, which shows that the text was captured and carries handler
// errors.
func (tr *transcript) requireCanary(t *testing.T, s secrets, wheres ...string) {
	t.Helper()
	for _, where := range wheres {
		require.Contains(t, tr.text(where), s.errorCanary, "%s lacks the handlers' errors; was it captured?", where)
	}
}

// lockedBuffer is a bytes.Buffer that goroutines may write to at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// traceLevel is the level of Watermill's trace lines under its slog
// adapter, the lowest any code in the module logs at.
const traceLevel = slog.LevelDebug - 4

// newCapturingLogger returns a logger that writes every line, trace lines
// included, as JSON to buf.
func newCapturingLogger(buf io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: traceLevel}))
}

// receiver is a loopback HTTP server that records the bodies posted to it
// and responds with a fixed status.
type receiver struct {
	*httptest.Server
	bodies lockedBuffer

	mu    sync.Mutex
	posts int
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		_, _ = r.bodies.Write(append(body, '\n'))
		r.mu.Lock()
		r.posts++
		r.mu.Unlock()
		w.WriteHeader(status)
		if status >= 400 {
			_, _ = io.WriteString(w, "receiver refused the alert")
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) postCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts
}

// runCLI runs the deadletter command and records its output under its
// arguments' first words, with the URLs left out of the name.
func runCLI(tr *transcript, name string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = cli.Main(args, &out, &errOut)
	tr.add("deadletter "+name+" stdout", out.String())
	tr.add("deadletter "+name+" stderr", errOut.String())
	return code, out.String(), errOut.String()
}
