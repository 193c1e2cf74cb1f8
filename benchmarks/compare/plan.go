package compare

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/benchmarks/load"
)

// Plan is the scenario matrix and its sizes. Zero fields take the values
// of DefaultPlan, which fit a 2-core machine.
type Plan struct {
	// Kinds are the secret kinds every scenario runs with.
	Kinds []load.Kind `json:"secrets"`
	// Framing is what classic clients use.
	Framing framing.Framing `json:"framing"`
	// Duration is the measured time of the bulk, storm and latency
	// scenarios.
	Duration time.Duration `json:"duration_ns"`

	// Bulk lists the connection counts of the bulk scenarios; each
	// connection streams BulkUp-byte requests answered by BulkDown-byte
	// replies.
	Bulk     []int `json:"bulk"`
	BulkUp   int   `json:"bulk_up"`
	BulkDown int   `json:"bulk_down"`

	// Idle connections are opened, left alone for Settle, then checked.
	Idle   int           `json:"idle"`
	Settle time.Duration `json:"settle_ns"`

	// StormConcurrency is how many handshakes are in flight at once.
	StormConcurrency int `json:"storm_concurrency"`

	// RRConns connections each send RRRate requests per second of RRReq
	// bytes, answered after RRDelay with RRReply bytes.
	RRConns int           `json:"rr_conns"`
	RRRate  float64       `json:"rr_rate"`
	RRReq   int           `json:"rr_req"`
	RRReply int           `json:"rr_reply"`
	RRDelay time.Duration `json:"rr_delay_ns"`

	// OpenConcurrency and OpenRate bound how connections are opened.
	OpenConcurrency int     `json:"open_concurrency"`
	OpenRate        float64 `json:"open_rate"`

	// Workers is the {workers} of command templates.
	Workers int `json:"workers"`

	// Only, if set, keeps the scenarios whose names start with one of its
	// entries, e.g. "bulk", "idle-", "rr-1000".
	Only []string `json:"only,omitempty"`
}

// DefaultPlan is the matrix of the issue, sized for 2 cores and well under
// five minutes per secret kind and proxy.
func DefaultPlan() Plan {
	return Plan{
		Kinds:            []load.Kind{load.DD},
		Framing:          framing.Intermediate,
		Duration:         5 * time.Second,
		Bulk:             []int{1, 16, 256},
		BulkUp:           64 << 10,
		BulkDown:         64 << 10,
		Idle:             10000,
		Settle:           2 * time.Second,
		StormConcurrency: 32,
		RRConns:          1000,
		RRRate:           10,
		RRReq:            128,
		RRReply:          1024,
		OpenConcurrency:  128,
		Workers:          runtime.NumCPU(),
	}
}

// withDefaults fills the zero fields of p from DefaultPlan.
func (p Plan) withDefaults() Plan {
	d := DefaultPlan()
	if p.Kinds == nil {
		p.Kinds = d.Kinds
	}
	if p.Bulk == nil {
		p.Bulk = d.Bulk
	}
	setZero(&p.Framing, d.Framing)
	setZero(&p.Duration, d.Duration)
	setZero(&p.BulkUp, d.BulkUp)
	setZero(&p.BulkDown, d.BulkDown)
	setZero(&p.Idle, d.Idle)
	setZero(&p.Settle, d.Settle)
	setZero(&p.StormConcurrency, d.StormConcurrency)
	setZero(&p.RRConns, d.RRConns)
	setZero(&p.RRRate, d.RRRate)
	setZero(&p.RRReq, d.RRReq)
	setZero(&p.RRReply, d.RRReply)
	setZero(&p.OpenConcurrency, d.OpenConcurrency)
	setZero(&p.Workers, d.Workers)
	return p
}

func setZero[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Scenario types.
const (
	typeBulk  = "bulk"
	typeIdle  = "idle"
	typeStorm = "storm"
	typeRR    = "rr"
)

type scenario struct {
	name  string // e.g. bulk-16
	typ   string
	conns int
}

// scenarios returns the matrix in the order it runs.
func (p Plan) scenarios() []scenario {
	var all []scenario
	for _, n := range p.Bulk {
		all = append(all, scenario{fmt.Sprintf("bulk-%d", n), typeBulk, n})
	}
	all = append(all,
		scenario{fmt.Sprintf("idle-%d", p.Idle), typeIdle, p.Idle},
		scenario{"storm", typeStorm, p.StormConcurrency},
		scenario{fmt.Sprintf("rr-%d", p.RRConns), typeRR, p.RRConns},
	)
	if len(p.Only) == 0 {
		return all
	}
	var kept []scenario
	for _, s := range all {
		for _, prefix := range p.Only {
			if strings.HasPrefix(s.name, prefix) {
				kept = append(kept, s)
				break
			}
		}
	}
	return kept
}
