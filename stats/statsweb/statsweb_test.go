package statsweb

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mtproxy-go/mtproxy/stats"
)

var (
	keyAlice = [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	keyOther = [16]byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98}
)

// knownSnapshot has a distinct value in every field: Counters field i is
// 1_000_003+7i, the gauges 501+i.
func knownSnapshot() stats.Snapshot {
	var s stats.Snapshot
	cv := reflect.ValueOf(&s.Counters).Elem()
	for i := range cv.NumField() {
		setInt(cv.Field(i), 1_000_003+7*int64(i))
	}
	sv := reflect.ValueOf(&s).Elem()
	for i := range sv.NumField() {
		if f := sv.Type().Field(i); !f.Anonymous && isInteger(f.Type.Kind()) {
			setInt(sv.Field(i), 501+int64(i))
		}
	}
	s.PerSecret = map[[16]byte]stats.Secret{
		keyAlice: {Handshakes: 41, Active: 3, BytesIn: 4001, BytesOut: 4002},
		keyOther: {Handshakes: 17, Active: 2, BytesIn: 1701, BytesOut: 1702},
	}
	return s
}

func setInt(v reflect.Value, n int64) {
	if v.CanInt() {
		v.SetInt(n)
	} else {
		v.SetUint(uint64(n))
	}
}

var (
	startTime  = time.Unix(1_700_000_000, 0)
	configTime = time.Unix(1_700_000_500, 0)
)

func middleInfo() Info {
	return Info{
		Version: "mtproxy-go test-1.2.3", StartTime: startTime, CipherTier: "vaes256", Mode: ModeMiddle,
		ProxyTagSet: true, MaxConnections: 60000,
		ConfigFile: "/etc/mtproxy/proxy-multi.conf", ConfigLoadedAt: configTime, ConfigSize: 1234,
		ConfigMD5: "0123456789abcdef0123456789abcdef", ConfigClusters: 5,
		Users: map[[16]byte]string{keyAlice: "alice"},
	}
}

func staticSource(s stats.Snapshot) Source {
	return func(context.Context) (stats.Snapshot, error) { return s, nil }
}

func newHandler(t *testing.T, src Source, info Info, opts ...Option) *Handler {
	t.Helper()
	return New(src, func() Info { return info }, zap.NewNop(), opts...)
}

// get runs one request against h from remote.
func get(h http.Handler, method, target, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type line struct{ key, value string }

// parseStats parses a /stats body, failing on any line that is not
// "key\tvalue".
func parseStats(t *testing.T, body string) []line {
	t.Helper()
	if !strings.HasSuffix(body, "\n") {
		t.Fatalf("body does not end with a newline: %q", body)
	}
	var lines []line
	for i, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		k, v, ok := strings.Cut(l, "\t")
		if !ok || k == "" || strings.ContainsAny(k, " \t\r") || strings.ContainsAny(v, "\t\r") {
			t.Fatalf("line %d %q is not key\\tvalue", i+1, l)
		}
		lines = append(lines, line{k, v})
	}
	return lines
}

func statsMap(t *testing.T, lines []line) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range lines {
		if _, dup := m[l.key]; dup {
			t.Fatalf("key %q printed twice", l.key)
		}
		m[l.key] = l.value
	}
	return m
}

func TestStatsText(t *testing.T) {
	snap := knownSnapshot()
	info := middleInfo()
	h := newHandler(t, staticSource(snap), info)
	before := time.Now().Unix()
	w := get(h, http.MethodGet, "/stats", "127.0.0.1:40000")
	after := time.Now().Unix()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, body %q", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		t.Errorf("Content-Length %q for %d bytes", cl, w.Body.Len())
	}
	lines := parseStats(t, w.Body.String())
	m := statsMap(t, lines)

	want := map[string]string{
		"pid":                             strconv.Itoa(os.Getpid()),
		"start_time":                      "1700000000",
		"active_connections":              itoa(int64(snap.Clients + snap.DCConns + snap.MPReady + snap.MPStarting)),
		"outbound_connections":            itoa(int64(snap.DCConns + snap.MPReady + snap.MPStarting)),
		"outbound_connections_created":    utoa(snap.DCConnected + snap.MPConnected),
		"total_connect_failures":          utoa(snap.DCFailed + snap.MPFailed),
		"inbound_connections":             itoa(int64(snap.Clients)),
		"inbound_connections_accepted":    utoa(snap.Accepted),
		"active_special_connections":      itoa(int64(snap.Clients)),
		"max_special_connections":         "60000",
		"accept_connection_limit_failed":  utoa(snap.OverLimit),
		"config_filename":                 "/etc/mtproxy/proxy-multi.conf",
		"config_loaded_at":                "1700000500",
		"config_size":                     "1234",
		"config_md5":                      "0123456789abcdef0123456789abcdef",
		"config_auth_clusters":            "5",
		"workers":                         itoa(int64(snap.Loops)),
		"tot_forwarded_queries":           utoa(snap.MPRequests),
		"dropped_queries":                 utoa(snap.MPDropped),
		"tot_forwarded_responses":         utoa(snap.MPAnswers),
		"dropped_responses":               utoa(snap.MPUnknownID),
		"tot_forwarded_simple_acks":       utoa(snap.MPQuickAcks),
		"total_ready_targets":             itoa(int64(snap.MPReady)),
		"total_connections":               itoa(int64(snap.Clients + snap.DCConns + snap.MPReady + snap.MPStarting)),
		"total_special_connections":       itoa(int64(snap.Clients)),
		"total_max_special_connections":   "60000",
		"ext_connections":                 "5", // 3 + 2 active
		"ext_connections_created":         utoa(snap.HandshakesOK),
		"total_network_buffers_used_size": itoa(snap.QueuedBytes),
		"connections_failed_flood":        utoa(snap.MPOverflow),
		"connections_failed_lru":          utoa(snap.BudgetClosed),
		"proxy_mode":                      "2",
		"proxy_tag_set":                   "1",
		"version":                         "mtproxy-go test-1.2.3",
		"mode":                            "middle",
		"cipher_tier":                     "vaes256",
		"loops":                           itoa(int64(snap.Loops)),
		"clients":                         itoa(int64(snap.Clients)),
		"dc_conns":                        itoa(int64(snap.DCConns)),
		"mp_ready":                        itoa(int64(snap.MPReady)),
		"mp_starting":                     itoa(int64(snap.MPStarting)),
		"queued_bytes":                    itoa(snap.QueuedBytes),
		"handshakes_ok":                   utoa(snap.HandshakesOK),
		"handshake_timeouts":              utoa(snap.HandshakeTimeouts),
		"tls_bad_hello":                   utoa(snap.TLSBadHello),
		"tls_unknown_sni":                 utoa(snap.TLSUnknownSNI),
		"mp_unknown_id":                   utoa(snap.MPUnknownID),
		"mp_quick_acks":                   utoa(snap.MPQuickAcks),
		"dc_bytes":                        utoa(snap.DCBytes),
		"user_handshakes:alice":           "41",
		"user_active:alice":               "3",
		"user_bytes_in:alice":             "4001",
		"user_bytes_out:alice":            "4002",
	}
	other := hashLabel(keyOther)
	want["user_handshakes:"+other] = "17"
	want["user_active:"+other] = "2"
	want["user_bytes_in:"+other] = "1701"
	want["user_bytes_out:"+other] = "1702"
	for k, v := range want {
		if got, ok := m[k]; !ok {
			t.Errorf("%s missing", k)
		} else if got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// Every counter, under its snake-case name.
	cv := reflect.ValueOf(snap.Counters)
	for i := range cv.NumField() {
		k := snakeCase(cv.Type().Field(i).Name)
		if got, want := m[k], intField(cv.Field(i)); got != want {
			t.Errorf("%s (Counters.%s) = %q, want %s", k, cv.Type().Field(i).Name, got, want)
		}
	}
	if ct, err := strconv.ParseInt(m["current_time"], 10, 64); err != nil || ct < before || ct > after {
		t.Errorf("current_time %q, want within [%d, %d]", m["current_time"], before, after)
	}
	if up, err := strconv.ParseInt(m["uptime"], 10, 64); err != nil || up < before-startTime.Unix() || up > after-startTime.Unix() {
		t.Errorf("uptime %q", m["uptime"])
	}
	if g, err := strconv.ParseFloat(m["stats_generate_time"], 64); err != nil || g < 0 || g > 5 ||
		len(m["stats_generate_time"]) != len(strings.SplitN(m["stats_generate_time"], ".", 2)[0])+7 {
		t.Errorf("stats_generate_time %q, want %%.6f seconds", m["stats_generate_time"])
	}
	if runtime.GOOS == "linux" {
		for _, k := range []string{"vmsize_bytes", "vmrss_bytes", "vmdata_bytes"} {
			if n, err := strconv.ParseInt(m[k], 10, 64); err != nil || n <= 0 || n%1024 != 0 {
				t.Errorf("%s = %q, want a positive multiple of 1024", k, m[k])
			}
		}
	}

	// The order: the table's keys that are present, then the users by
	// label.
	var wantOrder []string
	for _, k := range statsTable {
		if _, ok := m[k.Key]; ok {
			wantOrder = append(wantOrder, k.Key)
		}
	}
	users := []string{"alice", other}
	if other < "alice" {
		users = []string{other, "alice"}
	}
	for _, u := range users {
		for _, p := range []string{"user_handshakes:", "user_active:", "user_bytes_in:", "user_bytes_out:"} {
			wantOrder = append(wantOrder, p+u)
		}
	}
	if len(lines) != len(wantOrder) {
		t.Fatalf("%d lines, want %d", len(lines), len(wantOrder))
	}
	for i, l := range lines {
		if l.key != wantOrder[i] {
			t.Fatalf("line %d is %q, want %q", i+1, l.key, wantOrder[i])
		}
	}
	assertNoSecrets(t, w.Body.String())
}

// TestStatsKeysTable checks the table itself: official keys first in the
// official relative order, no key twice, every counter present.
func TestStatsKeysTable(t *testing.T) {
	// protocol.md §8's proxy block, in order.
	officialProxy := strings.Fields(`config_filename config_loaded_at config_size config_md5 config_auth_clusters workers
queries_get qps_get tot_forwarded_queries expired_forwarded_queries dropped_queries
tot_forwarded_responses dropped_responses tot_forwarded_simple_acks dropped_simple_acks
active_rpcs_created active_rpcs rpc_dropped_answers rpc_dropped_running window_clamp
total_ready_targets total_allocated_targets total_declared_targets total_inactive_targets
total_connections total_encrypted_connections total_allocated_connections
total_allocated_outbound_connections total_allocated_inbound_connections
total_allocated_socket_connections total_dh_connections total_dh_rounds
total_special_connections total_max_special_connections total_accept_connections_failed
ext_connections ext_connections_created total_active_network_events
total_network_buffers_used_size total_network_buffers_allocated_bytes
total_network_buffers_used total_network_buffer_chunks_allocated
total_network_buffer_chunks_allocated_max mtproto_proxy_errors connections_failed_lru
connections_failed_flood http_connections pending_http_queries http_queries
http_bad_headers http_qps proxy_mode proxy_tag_set version`)
	pos := map[string]int{}
	for i, k := range officialProxy {
		pos[k] = i
	}
	keys := statsTable
	seen := map[string]bool{}
	lastProxy, ownStarted := -1, false
	for i, k := range keys {
		if seen[k.Key] {
			t.Errorf("key %q twice", k.Key)
		}
		seen[k.Key] = true
		if !k.Official {
			ownStarted = true
		} else if ownStarted {
			t.Errorf("official key %q after our own keys", k.Key)
		}
		if p, ok := pos[k.Key]; ok {
			if p <= lastProxy {
				t.Errorf("key %q out of the official order", k.Key)
			}
			lastProxy = p
		}
		if k.Key == "vmsize_bytes" && (i == 0 || keys[i-1].Key != "stats_generate_time") {
			t.Errorf("vmsize_bytes does not follow stats_generate_time")
		}
		if k.Doc == "" {
			t.Errorf("key %q has no doc", k.Key)
		}
	}
	if keys[0].Key != "pid" || keys[len(keys)-1].Official {
		t.Errorf("table starts with %q and ends with an official key", keys[0].Key)
	}
	if !seen["version"] || !seen["config_filename"] || !seen["stats_generate_time"] {
		t.Error("official keys missing")
	}
	ct := reflect.TypeFor[stats.Counters]()
	for i := range ct.NumField() {
		if k := snakeCase(ct.Field(i).Name); !seen[k] {
			t.Errorf("Counters.%s has no key %q", ct.Field(i).Name, k)
		}
	}
	for name, want := range map[string]string{
		"MPUnknownID": "mp_unknown_id", "HandshakesOK": "handshakes_ok", "DCConns": "dc_conns",
		"TLSBadHello": "tls_bad_hello", "Accepted": "accepted", "MPQuickAcks": "mp_quick_acks", "OverIPLimit": "over_ip_limit",
	} {
		if got := snakeCase(name); got != want {
			t.Errorf("snakeCase(%s) = %s, want %s", name, got, want)
		}
	}
}

func TestStatsDirectMode(t *testing.T) {
	info := Info{Version: "v", Mode: ModeDirect, CipherTier: "aesni"}
	h := newHandler(t, staticSource(knownSnapshot()), info)
	w := get(h, http.MethodGet, "/stats", "127.0.0.1:1")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	m := statsMap(t, parseStats(t, w.Body.String()))
	for _, k := range []string{"config_filename", "config_loaded_at", "config_size", "config_md5", "config_auth_clusters",
		"proxy_mode", "ext_connections", "ext_connections_created", "start_time", "uptime"} {
		if v, ok := m[k]; ok {
			t.Errorf("%s = %q printed in direct mode without a start time", k, v)
		}
	}
	if m["mode"] != "direct" || m["proxy_tag_set"] != "0" || m["version"] != "v" {
		t.Errorf("mode %q proxy_tag_set %q version %q", m["mode"], m["proxy_tag_set"], m["version"])
	}
}

// A caller's string cannot break the line format.
func TestStatsValuesStayOnTheirLine(t *testing.T) {
	info := Info{Version: "a\tb\nc\x00d\xff", Mode: ModeDirect,
		Users: map[[16]byte]string{keyAlice: "bob\tsmith\nevil\tline", keyOther: "  "}}
	h := newHandler(t, staticSource(knownSnapshot()), info)
	w := get(h, http.MethodGet, "/stats", "127.0.0.1:1")
	m := statsMap(t, parseStats(t, w.Body.String()))
	if m["version"] != "a b c d\uFFFD" {
		t.Errorf("version %q", m["version"])
	}
	if m["user_handshakes:bob_smith_evil_line"] != "41" || m["user_handshakes:"+hashLabel(keyOther)] != "17" {
		t.Errorf("user lines: %v", m)
	}
}

func TestStatsMethods(t *testing.T) {
	h := newHandler(t, staticSource(knownSnapshot()), middleInfo())
	for _, method := range []string{http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		if w := get(h, method, "/stats", "127.0.0.1:1"); w.Code != http.StatusNotImplemented {
			t.Errorf("%s /stats: status %d, want 501", method, w.Code)
		}
	}
}

func TestStatsPaths(t *testing.T) {
	h := newHandler(t, staticSource(knownSnapshot()), middleInfo())
	for _, target := range []string{"/", "/stat", "/stats/", "/Stats", "/stats?x=1", "/stats?", "/%73tats", "/statsx", "/metrics/", "/debug/pprof/"} {
		if w := get(h, http.MethodGet, target, "127.0.0.1:1"); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, w.Code)
		}
	}
}

func TestStatsRemoteAddress(t *testing.T) {
	h := newHandler(t, staticSource(knownSnapshot()), middleInfo())
	for _, remote := range []string{"203.0.113.5:40000", "10.0.0.1:1", "192.168.1.1:1", "[2001:db8::1]:1", "[::ffff:203.0.113.5]:1", "0.0.0.0:1", "garbage", ""} {
		w := get(h, http.MethodGet, "/stats", remote)
		if w.Code != http.StatusNotFound {
			t.Errorf("from %q: status %d, want 404", remote, w.Code)
		}
		if strings.Contains(w.Body.String(), "pid\t") {
			t.Errorf("from %q: statistics in the body", remote)
		}
		// Not even a hint that the method is wrong.
		if w := get(h, http.MethodPost, "/stats", remote); w.Code != http.StatusNotFound {
			t.Errorf("POST from %q: status %d, want 404", remote, w.Code)
		}
	}
	for _, remote := range []string{"127.0.0.1:1", "127.0.0.2:80", "[::1]:5", "[::ffff:127.0.0.1]:5"} {
		if w := get(h, http.MethodGet, "/stats", remote); w.Code != http.StatusOK {
			t.Errorf("from %q: status %d, want 200", remote, w.Code)
		}
	}
}

// scrape GETs /metrics and parses it.
func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	w := get(h, http.MethodGet, "/metrics", "198.51.100.7:1234")
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: status %d, body %q", w.Code, w.Body)
	}
	body := w.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return mfs, body
}

// value returns the value of the series of name with exactly these labels.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Errorf("no metric %s", name)
		return -1
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if want[lp.GetName()] != lp.GetValue() {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		default:
			return m.GetUntyped().GetValue()
		}
	}
	t.Errorf("no series %s%v", name, labels)
	return -1
}

func TestMetrics(t *testing.T) {
	snap := knownSnapshot()
	h := newHandler(t, staticSource(snap), middleInfo())
	mfs, body := scrape(t, h)

	check := func(want float64, name string, labels ...string) {
		t.Helper()
		if got := value(t, mfs, name, labels...); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	f := func(n uint64) float64 { return float64(n) }
	check(f(snap.Accepted), "mtproxy_connections_accepted_total")
	check(f(snap.OverLimit), "mtproxy_connections_rejected_total", "reason", "over_limit")
	check(f(snap.OverIPLimit), "mtproxy_connections_rejected_total", "reason", "over_ip_limit")
	check(f(snap.Refused), "mtproxy_connections_rejected_total", "reason", "draining")
	check(f(snap.BudgetClosed), "mtproxy_buffer_budget_closed_total")
	check(f(snap.HandshakesOK), "mtproxy_handshakes_total", "outcome", "ok")
	check(f(snap.HandshakesBad), "mtproxy_handshakes_total", "outcome", "bad")
	check(f(snap.HandshakeTimeouts), "mtproxy_handshakes_total", "outcome", "timeout")
	check(f(snap.ClientBytes), "mtproxy_bytes_total", "direction", "from_client")
	check(f(snap.DCBytes), "mtproxy_bytes_total", "direction", "from_backend")
	check(f(snap.TLSValid), "mtproxy_faketls_hellos_total", "outcome", "valid")
	check(f(snap.TLSReplay), "mtproxy_faketls_hellos_total", "outcome", "replay")
	check(f(snap.TLSClockSkew), "mtproxy_faketls_hellos_total", "outcome", "clock_skew")
	check(f(snap.Fronted), "mtproxy_fronted_total")
	check(f(snap.MPConnected), "mtproxy_mp_connection_events_total", "event", "connected")
	check(f(snap.MPLost), "mtproxy_mp_connection_events_total", "event", "lost")
	check(f(snap.MPRequests), "mtproxy_mp_requests_total")
	check(f(snap.MPQuickAcks), "mtproxy_mp_responses_total", "type", "simple_ack")
	check(f(snap.MPOverflow), "mtproxy_mp_clients_closed_total", "reason", "overflow")
	check(float64(snap.Clients), "mtproxy_client_connections")
	check(float64(snap.DCConns), "mtproxy_backend_connections")
	check(float64(snap.MPReady), "mtproxy_mp_connections", "state", "ready")
	check(float64(snap.MPStarting), "mtproxy_mp_connections", "state", "starting")
	check(float64(snap.QueuedBytes), "mtproxy_queued_bytes")
	check(float64(snap.Loops), "mtproxy_loops")
	check(60000, "mtproxy_client_connections_limit")
	check(1, "mtproxy_info", "version", "mtproxy-go test-1.2.3", "cipher_tier", "vaes256", "mode", "middle")
	check(1_700_000_000, "mtproxy_start_time_seconds")
	check(1_700_000_500, "mtproxy_config_loaded_time_seconds")

	other := hashLabel(keyOther)
	check(41, "mtproxy_user_handshakes_total", "user", "alice")
	check(3, "mtproxy_user_connections", "user", "alice")
	check(4001, "mtproxy_user_bytes_total", "user", "alice", "direction", "from_client")
	check(4002, "mtproxy_user_bytes_total", "user", "alice", "direction", "to_client")
	check(17, "mtproxy_user_handshakes_total", "user", other)
	check(2, "mtproxy_user_connections", "user", other)
	check(1701, "mtproxy_user_bytes_total", "user", other, "direction", "from_client")
	check(1702, "mtproxy_user_bytes_total", "user", other, "direction", "to_client")

	if got := len(mfs["mtproxy_user_connections"].GetMetric()); got != 2 {
		t.Errorf("%d user series, want 2", got)
	}
	if mfs["mtproxy_handshakes_total"].GetType() != dto.MetricType_COUNTER || mfs["mtproxy_client_connections"].GetType() != dto.MetricType_GAUGE {
		t.Error("wrong metric types")
	}
	if runtime.GOOS == "linux" {
		for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_open_fds"} {
			if mfs[name] == nil {
				t.Errorf("no %s", name)
			}
		}
	}
	assertNoSecrets(t, body)

	problems, err := testutil.GatherAndLint(h.registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "mtproxy_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestMetricsCoverAllFields checks that every counter and gauge of
// stats.Snapshot is exported as an mtproxy_* series.
func TestMetricsCoverAllFields(t *testing.T) {
	snap := knownSnapshot()
	mfs, _ := scrape(t, newHandler(t, staticSource(snap), Info{}))
	have := map[float64]bool{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "mtproxy_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			have[m.GetCounter().GetValue()] = true
			have[m.GetGauge().GetValue()] = true
		}
	}
	check := func(v reflect.Value, where string) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Anonymous || !isInteger(f.Type.Kind()) {
				continue
			}
			n, _ := strconv.ParseFloat(intField(v.Field(i)), 64)
			if !have[n] {
				t.Errorf("%s.%s (%v) is in no mtproxy_ metric", where, f.Name, n)
			}
		}
	}
	check(reflect.ValueOf(snap.Counters), "Counters")
	check(reflect.ValueOf(snap), "Snapshot")
}

func TestUserLabel(t *testing.T) {
	hexKey := hex.EncodeToString(keyAlice[:])
	sum := sha256.Sum256(keyAlice[:])
	hashed := "secret-" + hex.EncodeToString(sum[:4])
	for name, want := range map[string]string{
		"alice":                  "alice",
		"":                       hashed,
		" \t\n":                  hashed,
		" bob  smith\n":          "bob__smith",
		"dd" + hexKey:            hashed,
		strings.ToUpper(hexKey):  hashed,
		"Ünïcødé-用户":             "Ünïcødé-用户",
		"bad\xffutf8":            "bad_utf8",
		strings.Repeat("x", 100): strings.Repeat("x", 64),
	} {
		if got := UserLabel(keyAlice, name); got != want {
			t.Errorf("UserLabel(%q) = %q, want %q", name, got, want)
		}
	}
	if hashLabel(keyAlice) == hashLabel(keyOther) {
		t.Error("two keys, one hash label")
	}
}

// Two secrets with one name are one user.
func TestUserLabelsMerge(t *testing.T) {
	rows := userRows(knownSnapshot().PerSecret, map[[16]byte]string{keyAlice: "team", keyOther: "team"})
	if len(rows) != 1 || rows[0].Label != "team" || rows[0].Handshakes != 58 || rows[0].Active != 5 ||
		rows[0].BytesIn != 5702 || rows[0].BytesOut != 5704 {
		t.Fatalf("rows %+v", rows)
	}
	// And the metrics still gather.
	info := Info{Users: map[[16]byte]string{keyAlice: "team", keyOther: "team"}}
	mfs, _ := scrape(t, newHandler(t, staticSource(knownSnapshot()), info))
	if got := value(t, mfs, "mtproxy_user_handshakes_total", "user", "team"); got != 58 {
		t.Errorf("merged handshakes %v", got)
	}
}

// assertNoSecrets fails if a client key shows in any usual encoding.
func assertNoSecrets(t *testing.T, body string) {
	t.Helper()
	for _, key := range [][16]byte{keyAlice, keyOther} {
		h := hex.EncodeToString(key[:])
		for _, enc := range []string{h, strings.ToUpper(h), h[:16], h[16:], string(key[:]),
			base64.StdEncoding.EncodeToString(key[:]), base64.RawURLEncoding.EncodeToString(key[:])} {
			if strings.Contains(body, enc) {
				t.Errorf("secret %s appears in the output (as %q)", h, enc)
			}
		}
	}
}

func TestOneSnapshotPerRequest(t *testing.T) {
	var calls atomic.Int64
	snap := knownSnapshot()
	src := func(context.Context) (stats.Snapshot, error) {
		calls.Add(1)
		return snap, nil
	}
	h := newHandler(t, src, middleInfo())
	scrape(t, h)
	if n := calls.Load(); n != 1 {
		t.Errorf("/metrics took %d snapshots, want 1", n)
	}
	get(h, http.MethodGet, "/stats", "127.0.0.1:1")
	if n := calls.Load(); n != 2 {
		t.Errorf("/stats took %d snapshots, want 1", n-1)
	}
	get(h, http.MethodGet, "/stats", "203.0.113.1:1")
	get(h, http.MethodPost, "/stats", "127.0.0.1:1")
	if n := calls.Load(); n != 2 {
		t.Errorf("refused requests took %d snapshots", n-2)
	}
}

func TestScrapeErrors(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	sources := map[string]Source{
		"error": func(context.Context) (stats.Snapshot, error) {
			return stats.Snapshot{}, errors.New("reactor 3 is gone")
		},
		"timeout": func(ctx context.Context) (stats.Snapshot, error) {
			<-ctx.Done()
			return stats.Snapshot{}, ctx.Err()
		},
		"ignores ctx": func(context.Context) (stats.Snapshot, error) {
			<-release
			return stats.Snapshot{}, nil
		},
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			h := New(src, nil, zap.New(core), WithTimeout(100*time.Millisecond))
			for _, path := range []string{"/stats", "/metrics"} {
				start := time.Now()
				w := get(h, http.MethodGet, path, "127.0.0.1:1")
				if took := time.Since(start); took > 3*time.Second {
					t.Errorf("%s took %v", path, took)
				}
				if w.Code != http.StatusInternalServerError {
					t.Errorf("%s: status %d, want 500; body %q", path, w.Code, w.Body)
				}
				wantMsg := "deadline exceeded"
				if name == "error" {
					wantMsg = "reactor 3 is gone"
				}
				if !strings.Contains(w.Body.String(), wantMsg) {
					t.Errorf("%s: body %q does not say %q", path, w.Body, wantMsg)
				}
				if strings.Contains(w.Body.String(), "pid\t") || strings.Contains(w.Body.String(), "mtproxy_handshakes_total") ||
					strings.Contains(w.Body.String(), "go_goroutines") {
					t.Errorf("%s: statistics in an error answer: %q", path, w.Body)
				}
			}
			if n := logs.FilterMessageSnippet("failed").Len(); n != 2 {
				t.Errorf("%d failures logged, want 2: %v", n, logs.All())
			}
		})
	}
	h := New(nil, nil, nil)
	if w := get(h, http.MethodGet, "/stats", "127.0.0.1:1"); w.Code != http.StatusInternalServerError {
		t.Errorf("nil source: status %d", w.Code)
	}
}

func TestMetricsMethods(t *testing.T) {
	h := newHandler(t, staticSource(knownSnapshot()), middleInfo())
	if w := get(h, http.MethodPost, "/metrics", "127.0.0.1:1"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", w.Code)
	}
	if w := get(h, http.MethodHead, "/metrics", "127.0.0.1:1"); w.Code != http.StatusOK {
		t.Errorf("HEAD /metrics: %d", w.Code)
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	h := newHandler(t, staticSource(knownSnapshot()), middleInfo())
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "203.0.113.5:0", "10.1.2.3:0", "[2001:db8::1]:0", "example.com:0", "[::ffff:0.0.0.0]:0"} {
		s, err := Listen(addr, h)
		if err == nil {
			s.Close()
			t.Errorf("Listen(%q) served", addr)
			continue
		}
		if !strings.Contains(err.Error(), "not a loopback address") || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("Listen(%q): unclear error %v", addr, err)
		}
	}
	if _, err := Listen("127.0.0.1", h); err == nil || !strings.Contains(err.Error(), "port") {
		t.Errorf("Listen without a port: %v", err)
	}
	// With the option the check is skipped: a documentation address that
	// is not ours then fails in bind, not in the check (nothing public is
	// bound by the test).
	s, err := Listen("203.0.113.5:0", h, AllowNonLoopback())
	if err == nil {
		s.Close()
		t.Skip("203.0.113.5 is assigned to this machine")
	}
	if strings.Contains(err.Error(), "refusing") {
		t.Errorf("AllowNonLoopback still refused: %v", err)
	}
}

func TestListenServes(t *testing.T) {
	baseline := serverGoroutines()
	snap := knownSnapshot()
	core, logs := observer.New(zapcore.InfoLevel)
	h := New(staticSource(snap), func() Info { return middleInfo() }, zap.New(core))
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		s, err := Listen(addr, h, ListenLogger(zap.New(core)))
		if err != nil {
			t.Fatalf("Listen(%s): %v", addr, err)
		}
		tr := &http.Transport{}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		base := "http://" + s.Addr().String()

		resp, err := client.Get(base + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /stats: %s", resp.Status)
		}
		m := statsMap(t, parseStats(t, string(body)))
		if m["tot_forwarded_queries"] != utoa(snap.MPRequests) || m["user_handshakes:alice"] != "41" {
			t.Errorf("/stats over TCP: %v", m)
		}

		resp, err = client.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
		}
		if got := value(t, mfs, "mtproxy_mp_requests_total"); got != float64(snap.MPRequests) {
			t.Errorf("mtproxy_mp_requests_total %v", got)
		}

		resp, err = client.Post(base+"/stats", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("POST /stats: %s", resp.Status)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
		tr.CloseIdleConnections()
		if _, err := client.Get(base + "/stats"); err == nil {
			t.Errorf("%s still serves after Shutdown", addr)
		}
		if err := s.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Close after Shutdown: %v", err)
		}
	}
	waitNoLeak(t, baseline)
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
		t.Errorf("errors logged: %v", logs.All())
	}
}

func TestCloseWithOpenConnection(t *testing.T) {
	baseline := serverGoroutines()
	h := newHandler(t, staticSource(knownSnapshot()), middleInfo())
	s, err := Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	resp, err := client.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close() // the keep-alive connection stays open
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on an idle keep-alive connection")
	}
	tr.CloseIdleConnections()
	waitNoLeak(t, baseline)
}

// serverGoroutines counts the goroutines of an HTTP server or of this
// package.
func serverGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*Server).Serve") || strings.Contains(g, "net/http.(*conn).serve") ||
			(strings.Contains(g, "stats/statsweb.") && !strings.Contains(g, "statsweb.Test")) {
			count++
		}
	}
	return count
}

func waitNoLeak(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for serverGoroutines() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d server goroutines left (baseline %d):\n%s", serverGoroutines(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParseProcStatus(t *testing.T) {
	m := parseProcStatus([]byte("Name:\tmtproxy\nVmPeak:\t  2000 kB\nVmSize:\t  1500 kB\nVmRSS:\t   300 kB\nVmData:\t 77 kB\nThreads:\t5\nVmBad:\tx kB\n"))
	for k, want := range map[string]int64{"VmSize": 1500 << 10, "VmRSS": 300 << 10, "VmData": 77 << 10} {
		if m[k] != want {
			t.Errorf("%s = %d, want %d", k, m[k], want)
		}
	}
	if _, ok := m["VmBad"]; ok {
		t.Error("VmBad parsed")
	}
	if _, ok := m["Threads"]; ok {
		t.Error("Threads parsed")
	}
}

func ExampleUserLabel() {
	key := [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	fmt.Println(UserLabel(key, "alice"))
	fmt.Println(UserLabel(key, "") == hashLabel(key))
	// Output:
	// alice
	// true
}
