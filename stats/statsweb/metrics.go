package statsweb

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtproxy-go/mtproxy/stats"
)

// sample is one series of a metric: its label values and how to read it.
type sample struct {
	labels []string
	value  func(*stats.Snapshot) float64
}

// metric is one mtproxy_* metric made from the snapshot.
type metric struct {
	name, help string
	kind       prometheus.ValueType
	labels     []string // variable label names
	samples    []sample
}

func ctr(f func(*stats.Counters) uint64) func(*stats.Snapshot) float64 {
	return func(s *stats.Snapshot) float64 { return float64(f(&s.Counters)) }
}

func gauge(f func(*stats.Snapshot) int64) func(*stats.Snapshot) float64 {
	return func(s *stats.Snapshot) float64 { return float64(f(s)) }
}

func one(f func(*stats.Snapshot) float64) []sample { return []sample{{value: f}} }

// metricsTable lists the mtproxy_* metrics made from stats.Snapshot. Every
// field of stats.Counters and every gauge of stats.Snapshot is in it (a
// test checks).
var metricsTable = []metric{
	// Clients.
	{name: "mtproxy_connections_accepted_total", help: "Client connections accepted.", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.Accepted }))},
	{name: "mtproxy_connections_rejected_total", help: "Client connections closed at once, by reason: over_limit (over the connection cap), over_ip_limit (over the per-IP cap), draining (the proxy is stopping).", kind: prometheus.CounterValue,
		labels: []string{"reason"}, samples: []sample{
			{[]string{"over_limit"}, ctr(func(c *stats.Counters) uint64 { return c.OverLimit })},
			{[]string{"over_ip_limit"}, ctr(func(c *stats.Counters) uint64 { return c.OverIPLimit })},
			{[]string{"draining"}, ctr(func(c *stats.Counters) uint64 { return c.Refused })},
		}},
	{name: "mtproxy_buffer_budget_closed_total", help: "Clients closed, least recently active first, because all buffers together passed the budget.", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.BudgetClosed }))},
	{name: "mtproxy_handshakes_total", help: "Client obfuscated2 headers by outcome: ok (matched a secret), bad (matched none), timeout (no valid header in time).", kind: prometheus.CounterValue,
		labels: []string{"outcome"}, samples: []sample{
			{[]string{"ok"}, ctr(func(c *stats.Counters) uint64 { return c.HandshakesOK })},
			{[]string{"bad"}, ctr(func(c *stats.Counters) uint64 { return c.HandshakesBad })},
			{[]string{"timeout"}, ctr(func(c *stats.Counters) uint64 { return c.HandshakeTimeouts })},
		}},
	{name: "mtproxy_idle_timeouts_total", help: "Client/backend pairs closed for carrying nothing in time.", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.IdleTimeouts }))},
	{name: "mtproxy_unknown_dc_total", help: "Client headers naming a DC not in the table (sent to the default DC).", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.UnknownDC }))},
	{name: "mtproxy_bytes_total", help: "Bytes read, by direction: from_client (after the header), from_backend (DCs, middle proxies or the fronted site).", kind: prometheus.CounterValue,
		labels: []string{"direction"}, samples: []sample{
			{[]string{"from_client"}, ctr(func(c *stats.Counters) uint64 { return c.ClientBytes })},
			{[]string{"from_backend"}, ctr(func(c *stats.Counters) uint64 { return c.DCBytes })},
		}},
	{name: "mtproxy_backpressure_pauses_total", help: "Times a socket stopped being read because its peer lagged.", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.Pauses }))},

	// Backends (DCs or the fronted site).
	{name: "mtproxy_backend_dials_total", help: "Backend connections (DC or fronted site) by result: ok, failed.", kind: prometheus.CounterValue,
		labels: []string{"result"}, samples: []sample{
			{[]string{"ok"}, ctr(func(c *stats.Counters) uint64 { return c.DCConnected })},
			{[]string{"failed"}, ctr(func(c *stats.Counters) uint64 { return c.DCFailed })},
		}},

	// Fake TLS.
	{name: "mtproxy_faketls_hellos_total", help: "Fake-TLS ClientHellos by outcome; every one but valid is fronted.", kind: prometheus.CounterValue,
		labels: []string{"outcome"}, samples: []sample{
			{[]string{"valid"}, ctr(func(c *stats.Counters) uint64 { return c.TLSValid })},
			{[]string{"bad_hello"}, ctr(func(c *stats.Counters) uint64 { return c.TLSBadHello })},
			{[]string{"unknown_sni"}, ctr(func(c *stats.Counters) uint64 { return c.TLSUnknownSNI })},
			{[]string{"bad_digest"}, ctr(func(c *stats.Counters) uint64 { return c.TLSBadDigest })},
			{[]string{"clock_skew"}, ctr(func(c *stats.Counters) uint64 { return c.TLSClockSkew })},
			{[]string{"replay"}, ctr(func(c *stats.Counters) uint64 { return c.TLSReplay })},
		}},
	{name: "mtproxy_faketls_bad_headers_total", help: "Fake-TLS clients closed for bad records or a bad obfuscated2 header after a valid ClientHello.", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.TLSBadHeader }))},
	{name: "mtproxy_fronted_total", help: "Connections relayed to the real site (fake-TLS domain fronting).", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.Fronted }))},
	{name: "mtproxy_fronted_timeouts_total", help: "Of the fronted connections, those fronted for not finishing the handshake in time.", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.FrontedTimeout }))},

	// Middle proxies.
	{name: "mtproxy_mp_connection_events_total", help: "Middle-proxy RPC connection events: connected (handshake completed), failed (could not be made or failed the handshake), lost (a ready one closed or failed).", kind: prometheus.CounterValue,
		labels: []string{"event"}, samples: []sample{
			{[]string{"connected"}, ctr(func(c *stats.Counters) uint64 { return c.MPConnected })},
			{[]string{"failed"}, ctr(func(c *stats.Counters) uint64 { return c.MPFailed })},
			{[]string{"lost"}, ctr(func(c *stats.Counters) uint64 { return c.MPLost })},
		}},
	{name: "mtproxy_mp_requests_total", help: "Client packets sent to middle proxies (RPC_PROXY_REQ).", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.MPRequests }))},
	{name: "mtproxy_mp_dropped_requests_total", help: "Client packets not forwarded for not being MTProto.", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.MPDropped }))},
	{name: "mtproxy_mp_responses_total", help: "Middle-proxy messages delivered to clients, by type: answer (RPC_PROXY_ANS), simple_ack (RPC_SIMPLE_ACK).", kind: prometheus.CounterValue,
		labels: []string{"type"}, samples: []sample{
			{[]string{"answer"}, ctr(func(c *stats.Counters) uint64 { return c.MPAnswers })},
			{[]string{"simple_ack"}, ctr(func(c *stats.Counters) uint64 { return c.MPQuickAcks })},
		}},
	{name: "mtproxy_mp_unknown_client_responses_total", help: "Middle-proxy messages for a client that is gone (RPC_CLOSE_CONN sent).", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.MPUnknownID }))},
	{name: "mtproxy_mp_bad_answers_total", help: "Middle-proxy answers that could not be framed for the client (dropped).", kind: prometheus.CounterValue,
		samples: one(ctr(func(c *stats.Counters) uint64 { return c.MPBadAnswer }))},
	{name: "mtproxy_mp_clients_closed_total", help: "Middle-proxy-mode clients closed by the proxy, by reason: close_ext (RPC_CLOSE_EXT), connection_lost (their RPC connection closed), overflow (answer queue over its limit), no_connection (no RPC connection ready in time), unknown_cluster (no middle proxy serves their DC).", kind: prometheus.CounterValue,
		labels: []string{"reason"}, samples: []sample{
			{[]string{"close_ext"}, ctr(func(c *stats.Counters) uint64 { return c.MPCloseExt })},
			{[]string{"connection_lost"}, ctr(func(c *stats.Counters) uint64 { return c.MPClientsLost })},
			{[]string{"overflow"}, ctr(func(c *stats.Counters) uint64 { return c.MPOverflow })},
			{[]string{"no_connection"}, ctr(func(c *stats.Counters) uint64 { return c.MPNoConn })},
			{[]string{"unknown_cluster"}, ctr(func(c *stats.Counters) uint64 { return c.MPUnknownCluster })},
		}},

	// Gauges.
	{name: "mtproxy_client_connections", help: "Open client connections.", kind: prometheus.GaugeValue,
		samples: one(gauge(func(s *stats.Snapshot) int64 { return int64(s.Clients) }))},
	{name: "mtproxy_backend_connections", help: "Open backend connections (DCs or the fronted site).", kind: prometheus.GaugeValue,
		samples: one(gauge(func(s *stats.Snapshot) int64 { return int64(s.DCConns) }))},
	{name: "mtproxy_mp_connections", help: "Middle-proxy RPC connections by state: ready (serving clients), starting (connecting or in their handshake).", kind: prometheus.GaugeValue,
		labels: []string{"state"}, samples: []sample{
			{[]string{"ready"}, gauge(func(s *stats.Snapshot) int64 { return int64(s.MPReady) })},
			{[]string{"starting"}, gauge(func(s *stats.Snapshot) int64 { return int64(s.MPStarting) })},
		}},
	{name: "mtproxy_queued_bytes", help: "Bytes waiting in outbound buffers and pre-connection queues.", kind: prometheus.GaugeValue,
		samples: one(gauge(func(s *stats.Snapshot) int64 { return s.QueuedBytes }))},
	{name: "mtproxy_loops", help: "Reactors (event loops).", kind: prometheus.GaugeValue,
		samples: one(gauge(func(s *stats.Snapshot) int64 { return int64(s.Loops) }))},
}

// collector makes the mtproxy_* metrics from one snapshot per Collect,
// that is per scrape.
type collector struct {
	h       *Handler
	descs   []*prometheus.Desc // of metricsTable
	info    *prometheus.Desc
	start   *prometheus.Desc
	maxConn *prometheus.Desc
	cfgLoad *prometheus.Desc
	userHS  *prometheus.Desc
	userAct *prometheus.Desc
	userBy  *prometheus.Desc
}

func newCollector(h *Handler) *collector {
	c := &collector{
		h:       h,
		info:    prometheus.NewDesc("mtproxy_info", "The proxy's version, AES cipher tier and mode (direct or middle); always 1.", []string{"version", "cipher_tier", "mode"}, nil),
		start:   prometheus.NewDesc("mtproxy_start_time_seconds", "When the proxy started, Unix seconds.", nil, nil),
		maxConn: prometheus.NewDesc("mtproxy_client_connections_limit", "Cap on open client connections (0: none).", nil, nil),
		cfgLoad: prometheus.NewDesc("mtproxy_config_loaded_time_seconds", "When the middle-proxy configuration in use was loaded, Unix seconds.", nil, nil),
		userHS:  prometheus.NewDesc("mtproxy_user_handshakes_total", "Clients accepted with the user's secret.", []string{"user"}, nil),
		userAct: prometheus.NewDesc("mtproxy_user_connections", "Open clients of the user's secret.", []string{"user"}, nil),
		userBy:  prometheus.NewDesc("mtproxy_user_bytes_total", "Bytes of the user's clients by direction: from_client (read after the header), to_client (written, before TLS framing).", []string{"user", "direction"}, nil),
	}
	for _, m := range metricsTable {
		c.descs = append(c.descs, prometheus.NewDesc(m.name, m.help, m.labels, nil))
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{c.info, c.start, c.maxConn, c.cfgLoad, c.userHS, c.userAct, c.userBy} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it takes one snapshot (bounded
// by the handler's timeout); if that fails, the scrape fails.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap, err := c.h.snapshot(context.Background())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.info, err)
		return
	}
	info := c.h.info()
	for i, m := range metricsTable {
		for _, s := range m.samples {
			ch <- prometheus.MustNewConstMetric(c.descs[i], m.kind, s.value(&snap), s.labels...)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1,
		validUTF8(info.Version), validUTF8(info.CipherTier), validUTF8(info.Mode))
	if !info.StartTime.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.start, prometheus.GaugeValue, unixSeconds(info.StartTime))
	}
	ch <- prometheus.MustNewConstMetric(c.maxConn, prometheus.GaugeValue, float64(info.MaxConnections))
	if !info.ConfigLoadedAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.cfgLoad, prometheus.GaugeValue, unixSeconds(info.ConfigLoadedAt))
	}
	for _, u := range userRows(snap.PerSecret, info.Users) {
		ch <- prometheus.MustNewConstMetric(c.userHS, prometheus.CounterValue, float64(u.Handshakes), u.Label)
		ch <- prometheus.MustNewConstMetric(c.userAct, prometheus.GaugeValue, float64(u.Active), u.Label)
		ch <- prometheus.MustNewConstMetric(c.userBy, prometheus.CounterValue, float64(u.BytesIn), u.Label, "from_client")
		ch <- prometheus.MustNewConstMetric(c.userBy, prometheus.CounterValue, float64(u.BytesOut), u.Label, "to_client")
	}
}

// validUTF8 makes a caller's string a valid label value.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
