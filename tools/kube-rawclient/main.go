// Command kube-rawclient creates N Secrets with client-go as fast as the API
// server takes them: the "raw" baseline of the benchmark (bench/scenarios/raw-go.ts)
// measured with the fastest client Kubernetes has, not with
// @kubernetes/client-node, so secretsync's cold sync can be given as a fraction
// of the API server's own limit on the machine. Client-side rate limiting is
// off; the protocol (HTTP/2 by default over TLS, or HTTP/1.1) and the number of
// goroutines are flags. It prints one JSON object on stdout and no Secret data.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// result is what the benchmark reads: counts, timings, and what went over the wire.
type result struct {
	Created     int64            `json:"created"`
	Seconds     float64          `json:"seconds"`
	PerSecond   float64          `json:"perSecond"`
	P50Ms       float64          `json:"p50Ms"`
	P99Ms       float64          `json:"p99Ms"`
	Concurrency int              `json:"concurrency"`
	ContentType string           `json:"contentType"`
	Protocols   map[string]int64 `json:"protocols"`
	// Statuses counts every HTTP response, retries included (client-go retries a 429 by itself).
	Statuses map[string]int64 `json:"statuses"`
	// Connections counts every TCP connection dialled, the warm-up's included.
	Connections int64 `json:"connections"`
}

// recorder wraps client-go's transport: per-request latency, protocol and status, from the responses themselves.
type recorder struct {
	next      http.RoundTripper
	mu        sync.Mutex
	latencies []time.Duration
	protocols map[string]int64
	statuses  map[string]int64
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := r.next.RoundTrip(req)
	elapsed := time.Since(start)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latencies = append(r.latencies, elapsed)
	if err != nil {
		r.statuses["error"]++
		return resp, err
	}
	r.protocols[resp.Proto]++
	r.statuses[fmt.Sprint(resp.StatusCode)]++
	return resp, nil
}

func percentileMs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	rank = max(0, min(len(sorted)-1, rank))
	return float64(sorted[rank].Microseconds()) / 1000
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	namespace := flag.String("namespace", "", "namespace to create the Secrets in; it must exist (required)")
	n := flag.Int("n", 1000, "Secrets to create")
	concurrency := flag.Int("concurrency", 16, "goroutines creating Secrets at once")
	prefix := flag.String("prefix", "raw-go", "Secret names are PREFIX-0 … PREFIX-(N-1)")
	http1 := flag.Bool("http1", false, "use HTTP/1.1 only (ALPN offers http/1.1 alone); default is client-go's HTTP/2")
	protobuf := flag.Bool("protobuf", false, "send and accept protobuf instead of JSON")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *kubeconfig == "" || *namespace == "" || *n < 1 || *concurrency < 1 {
		flag.Usage()
		os.Exit(2)
	}

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("kubeconfig: %v", err)
	}
	// A negative QPS turns client-go's token bucket off: the API server alone sets the pace.
	config.QPS = -1
	config.UserAgent = "secretsync-bench-rawclient"
	if *http1 {
		config.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	contentType := "application/json"
	if *protobuf {
		contentType = "application/vnd.kubernetes.protobuf"
	}
	config.ContentType = contentType
	config.AcceptContentTypes = contentType

	var connections atomic.Int64
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	config.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		connections.Add(1)
		return dialer.DialContext(ctx, network, address)
	}
	rec := &recorder{protocols: map[string]int64{}, statuses: map[string]int64{}, latencies: make([]time.Duration, 0, *n)}
	config.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		rec.next = rt
		return rec
	})

	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		fail("client: %v", err)
	}
	secrets := clientset.CoreV1().Secrets(*namespace)

	// The bodies are made before the clock starts, as bench/scenarios/raw-baseline.ts makes its own.
	bodies := make([]*corev1.Secret, *n)
	for i := range bodies {
		data := map[string][]byte{}
		for _, k := range []string{"a", "b", "c"} {
			salt := make([]byte, 8)
			_, _ = rand.Read(salt)
			data[k] = []byte(fmt.Sprintf("%s-%d-%s", k, i, hex.EncodeToString(salt)))
		}
		bodies[i] = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:   fmt.Sprintf("%s-%d", *prefix, i),
				Labels: map[string]string{"bench.secretsync.io/raw": "true"},
			},
			Type: corev1.SecretTypeOpaque,
			Data: data,
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	// One request before the clock starts opens the connection. Without it every
	// goroutine's first request dials a connection of its own (Go's HTTP/2 comes
	// in through http.Transport's ALPN upgrade, which does not share a dial in
	// progress), and HTTP/2 would be measured over as many connections as
	// HTTP/1.1. A controller's first request is a list before its writes, too.
	if _, err := clientset.Discovery().ServerVersion(); err != nil {
		fail("GET /version: %v", err)
	}
	rec.mu.Lock()
	rec.latencies = rec.latencies[:0]
	clear(rec.protocols)
	clear(rec.statuses)
	rec.mu.Unlock()
	var next, created atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	started := time.Now()
	for range min(*concurrency, *n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) || ctx.Err() != nil {
					return
				}
				if _, err := secrets.Create(ctx, bodies[i], metav1.CreateOptions{}); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	if firstErr != nil {
		// A Kubernetes Status message names the object, never its data.
		fail("created %d of %d Secrets, then: %v", created.Load(), *n, firstErr)
	}

	rec.mu.Lock()
	sort.Slice(rec.latencies, func(a, b int) bool { return rec.latencies[a] < rec.latencies[b] })
	out := result{
		Created:     created.Load(),
		Seconds:     elapsed.Seconds(),
		PerSecond:   float64(created.Load()) / elapsed.Seconds(),
		P50Ms:       percentileMs(rec.latencies, 50),
		P99Ms:       percentileMs(rec.latencies, 99),
		Concurrency: *concurrency,
		ContentType: contentType,
		Protocols:   rec.protocols,
		Statuses:    rec.statuses,
		Connections: connections.Load(),
	}
	rec.mu.Unlock()
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("output: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kube-rawclient: "+format+"\n", args...)
	os.Exit(1)
}
