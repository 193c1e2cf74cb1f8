package statsweb

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/stats"
)

// statsKey is one line of /stats.
type statsKey struct {
	Key string
	// Official: the official MTProxy prints this key with this meaning
	// (protocol.md §8); the others are ours and follow the official ones.
	Official bool
	Doc      string // where the value comes from
	value    func(*view) (string, bool)
}

// view is what one /stats answer is made from.
type view struct {
	snap *stats.Snapshot
	info *Info
	now  time.Time
	gen  time.Duration // time taken to get the snapshot
	mem  map[string]int64
}

// statsTable holds the /stats keys in the order they are printed. A key
// whose value is unknown at the time is left out (e.g. the config_* keys
// in direct mode). After them come four lines per user, in the order of
// the users' labels (UserLabel):
//
//	user_handshakes:LABEL   clients accepted with the user's secret
//	user_active:LABEL       of which still open
//	user_bytes_in:LABEL     bytes read from them after their header
//	user_bytes_out:LABEL    bytes written to them (before TLS framing)
//
// Keys of the official MTProxy that we do not print, having nothing that
// means the same: the engine's idle, epoll, job, timer, TL, AES, DH and
// allocator counters (tot_idle_time, average_idle_percent,
// recent_idle_percent, active_network_events, time_after_epoll,
// epoll_calls, epoll_intr, PID, active_dh_connections,
// ready_outbound_connections, active_outbound_connections,
// active_inbound_connections, listening_connections, ready_targets, the
// allocated_* connection counters, heap_* counters, memfree_bytes,
// swap_*_bytes, …), and from the proxy block queries_get, qps_get,
// expired_forwarded_queries, dropped_simple_acks (counted in
// dropped_responses), active_rpcs_created, active_rpcs,
// rpc_dropped_answers, rpc_dropped_running, window_clamp,
// total_allocated_targets, total_declared_targets, total_inactive_targets,
// total_encrypted_connections, total_allocated_*_connections,
// total_dh_connections, total_dh_rounds, total_accept_connections_failed
// (its connection-limit part is accept_connection_limit_failed),
// total_active_network_events, total_network_buffers_allocated_bytes,
// total_network_buffers_used, total_network_buffer_chunks_allocated(_max),
// mtproto_proxy_errors and the http_* keys (no HTTP transport).
var statsTable = buildStatsTable()

func buildStatsTable() []statsKey {
	outbound := func(s *stats.Snapshot) int64 { return int64(s.DCConns + s.MPReady + s.MPStarting) }
	open := func(s *stats.Snapshot) int64 { return int64(s.Clients) + outbound(s) }
	middle := func(v *view) bool { return v.info.Mode == ModeMiddle }
	t := []statsKey{
		// The engine's block.
		off("pid", "process id", func(*view) (string, bool) { return itoa(int64(os.Getpid())), true }),
		off("start_time", "Info.StartTime, Unix seconds", func(v *view) (string, bool) {
			return itoa(v.info.StartTime.Unix()), !v.info.StartTime.IsZero()
		}),
		off("current_time", "now, Unix seconds", func(v *view) (string, bool) { return itoa(v.now.Unix()), true }),
		off("uptime", "seconds since Info.StartTime", func(v *view) (string, bool) {
			return itoa(int64(v.now.Sub(v.info.StartTime) / time.Second)), !v.info.StartTime.IsZero()
		}),
		off("active_connections", "open connections of every kind: Clients+DCConns+MPReady+MPStarting",
			func(v *view) (string, bool) { return itoa(open(v.snap)), true }),
		off("outbound_connections", "open backend connections: DCConns+MPReady+MPStarting",
			func(v *view) (string, bool) { return itoa(outbound(v.snap)), true }),
		off("outbound_connections_created", "DCConnected+MPConnected",
			func(v *view) (string, bool) { return utoa(v.snap.DCConnected + v.snap.MPConnected), true }),
		off("total_connect_failures", "DCFailed+MPFailed",
			func(v *view) (string, bool) { return utoa(v.snap.DCFailed + v.snap.MPFailed), true }),
		off("inbound_connections", "Clients", func(v *view) (string, bool) { return itoa(int64(v.snap.Clients)), true }),
		off("inbound_connections_accepted", "Accepted", func(v *view) (string, bool) { return utoa(v.snap.Accepted), true }),
		off("active_special_connections", "Clients", func(v *view) (string, bool) { return itoa(int64(v.snap.Clients)), true }),
		off("max_special_connections", "Info.MaxConnections (0: no cap)",
			func(v *view) (string, bool) { return itoa(int64(v.info.MaxConnections)), true }),
		off("accept_connection_limit_failed", "OverLimit", func(v *view) (string, bool) { return utoa(v.snap.OverLimit), true }),
		off("stats_generate_time", "seconds taken by the snapshot, %.6f",
			func(v *view) (string, bool) { return strconv.FormatFloat(v.gen.Seconds(), 'f', 6, 64), true }),
		off("vmsize_bytes", "VmSize of /proc/self/status", memKey("VmSize")),
		off("vmrss_bytes", "VmRSS of /proc/self/status", memKey("VmRSS")),
		off("vmdata_bytes", "VmData of /proc/self/status", memKey("VmData")),

		// The proxy's block, in the official order.
		off("config_filename", "Info.ConfigFile", func(v *view) (string, bool) {
			return oneLine(v.info.ConfigFile), v.info.ConfigFile != ""
		}),
		off("config_loaded_at", "Info.ConfigLoadedAt, Unix seconds", func(v *view) (string, bool) {
			return itoa(v.info.ConfigLoadedAt.Unix()), !v.info.ConfigLoadedAt.IsZero()
		}),
		off("config_size", "Info.ConfigSize", func(v *view) (string, bool) {
			return itoa(int64(v.info.ConfigSize)), v.info.ConfigSize > 0
		}),
		off("config_md5", "Info.ConfigMD5", func(v *view) (string, bool) {
			return oneLine(v.info.ConfigMD5), v.info.ConfigMD5 != ""
		}),
		off("config_auth_clusters", "Info.ConfigClusters", func(v *view) (string, bool) {
			return itoa(int64(v.info.ConfigClusters)), v.info.ConfigClusters > 0
		}),
		off("workers", "Loops (reactors)", func(v *view) (string, bool) { return itoa(int64(v.snap.Loops)), true }),
		off("tot_forwarded_queries", "MPRequests", func(v *view) (string, bool) { return utoa(v.snap.MPRequests), true }),
		off("dropped_queries", "MPDropped", func(v *view) (string, bool) { return utoa(v.snap.MPDropped), true }),
		off("tot_forwarded_responses", "MPAnswers", func(v *view) (string, bool) { return utoa(v.snap.MPAnswers), true }),
		off("dropped_responses", "MPUnknownID (answers and simple acks for clients that are gone)",
			func(v *view) (string, bool) { return utoa(v.snap.MPUnknownID), true }),
		off("tot_forwarded_simple_acks", "MPQuickAcks", func(v *view) (string, bool) { return utoa(v.snap.MPQuickAcks), true }),
		off("total_ready_targets", "MPReady (ready RPC connections, not distinct middle proxies)",
			func(v *view) (string, bool) { return itoa(int64(v.snap.MPReady)), true }),
		off("total_connections", "as active_connections", func(v *view) (string, bool) { return itoa(open(v.snap)), true }),
		off("total_special_connections", "Clients", func(v *view) (string, bool) { return itoa(int64(v.snap.Clients)), true }),
		off("total_max_special_connections", "Info.MaxConnections (0: no cap)",
			func(v *view) (string, bool) { return itoa(int64(v.info.MaxConnections)), true }),
		off("ext_connections", "middle mode only: clients past their header still open (sum of PerSecret Active)",
			func(v *view) (string, bool) {
				var n int64
				for _, s := range v.snap.PerSecret {
					n += s.Active
				}
				return itoa(n), middle(v)
			}),
		off("ext_connections_created", "middle mode only: HandshakesOK",
			func(v *view) (string, bool) { return utoa(v.snap.HandshakesOK), middle(v) }),
		off("total_network_buffers_used_size", "QueuedBytes",
			func(v *view) (string, bool) { return itoa(v.snap.QueuedBytes), true }),
		off("connections_failed_lru", "BudgetClosed (clients closed over the buffer budget)",
			func(v *view) (string, bool) { return utoa(v.snap.BudgetClosed), true }),
		off("connections_failed_flood", "MPOverflow", func(v *view) (string, bool) { return utoa(v.snap.MPOverflow), true }),
		off("proxy_mode", "middle mode only: 2 (outbound proxying), as the official",
			func(v *view) (string, bool) { return "2", middle(v) }),
		off("proxy_tag_set", "Info.ProxyTagSet, 0 or 1", func(v *view) (string, bool) {
			if v.info.ProxyTagSet {
				return "1", true
			}
			return "0", true
		}),
		off("version", "Info.Version", func(v *view) (string, bool) { return oneLine(v.info.Version), true }),

		// Ours.
		own("mode", "Info.Mode: direct or middle", func(v *view) (string, bool) {
			return oneLine(v.info.Mode), v.info.Mode != ""
		}),
		own("cipher_tier", "Info.CipherTier", func(v *view) (string, bool) {
			return oneLine(v.info.CipherTier), v.info.CipherTier != ""
		}),
	}
	// Every gauge of stats.Snapshot and every field of stats.Counters, by
	// its name in snake case, in the order of the structs.
	st := reflect.TypeFor[stats.Snapshot]()
	for i := range st.NumField() {
		f := st.Field(i)
		if f.Anonymous || !f.IsExported() || !isInteger(f.Type.Kind()) {
			continue
		}
		idx := f.Index
		t = append(t, own(snakeCase(f.Name), "Snapshot."+f.Name, func(v *view) (string, bool) {
			return intField(reflect.ValueOf(v.snap).Elem().FieldByIndex(idx)), true
		}))
	}
	ct := reflect.TypeFor[stats.Counters]()
	for i := range ct.NumField() {
		f := ct.Field(i)
		if !f.IsExported() || !isInteger(f.Type.Kind()) {
			continue
		}
		idx := f.Index
		t = append(t, own(snakeCase(f.Name), "Counters."+f.Name, func(v *view) (string, bool) {
			return intField(reflect.ValueOf(&v.snap.Counters).Elem().FieldByIndex(idx)), true
		}))
	}
	return t
}

func off(key, doc string, f func(*view) (string, bool)) statsKey {
	return statsKey{Key: key, Official: true, Doc: doc, value: f}
}

func own(key, doc string, f func(*view) (string, bool)) statsKey {
	return statsKey{Key: key, Doc: doc, value: f}
}

func memKey(name string) func(*view) (string, bool) {
	return func(v *view) (string, bool) {
		n, ok := v.mem[name]
		return itoa(n), ok
	}
}

func itoa(n int64) string  { return strconv.FormatInt(n, 10) }
func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

func intField(v reflect.Value) string {
	if v.CanInt() {
		return itoa(v.Int())
	}
	return utoa(v.Uint())
}

// snakeCase turns a Go field name into snake case, keeping initialisms
// whole: MPUnknownID → mp_unknown_id, HandshakesOK → handshakes_ok.
func snakeCase(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) ||
				(unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// oneLine keeps a value on its line: tabs, line breaks and other control
// characters become spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// readMem returns the Vm* sizes of /proc/self/status in bytes; nil where
// there is no such file.
func readMem() map[string]int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	return parseProcStatus(data)
}

func parseProcStatus(data []byte) map[string]int64 {
	m := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(name, "Vm") {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		m[name] = n * 1024
	}
	return m
}

// renderStats writes the /stats body.
func renderStats(v *view) []byte {
	var b bytes.Buffer
	for _, k := range statsTable {
		if val, ok := k.value(v); ok {
			b.WriteString(k.Key)
			b.WriteByte('\t')
			b.WriteString(val)
			b.WriteByte('\n')
		}
	}
	for _, u := range userRows(v.snap.PerSecret, v.info.Users) {
		fmt.Fprintf(&b, "user_handshakes:%s\t%d\n", u.Label, u.Handshakes)
		fmt.Fprintf(&b, "user_active:%s\t%d\n", u.Label, u.Active)
		fmt.Fprintf(&b, "user_bytes_in:%s\t%d\n", u.Label, u.BytesIn)
		fmt.Fprintf(&b, "user_bytes_out:%s\t%d\n", u.Label, u.BytesOut)
	}
	return b.Bytes()
}

// serveStats answers GET /stats as the official MTProxy does: only to a
// loopback client (else 404), only GET (else 501), only the exact URI
// "/stats" (else 404).
func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) {
	if !isLoopback(r.RemoteAddr) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "not implemented", http.StatusNotImplemented)
		return
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if uri != "/stats" {
		http.NotFound(w, r)
		return
	}
	start := time.Now()
	snap, err := h.snapshot(r.Context())
	if err != nil {
		h.log.Warn("statistics: /stats failed", zap.Error(err))
		http.Error(w, "statistics unavailable: "+err.Error(), http.StatusInternalServerError)
		return
	}
	now := time.Now()
	info := h.info()
	body := renderStats(&view{snap: &snap, info: &info, now: now, gen: now.Sub(start), mem: readMem()})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
