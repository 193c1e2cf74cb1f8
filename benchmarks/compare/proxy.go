package compare

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakeme"
	"github.com/mtproxy-go/mtproxy/benchmarks/load"
	"github.com/mtproxy-go/mtproxy/benchmarks/proxyproc"
)

// Proxy is one proxy under comparison: either started for every scenario
// from a command template, or already running at Addr as process PID.
type Proxy struct {
	Name string
	// Middle says the proxy runs in middle-proxy mode: its clients' traffic
	// goes to the fake middle proxy (fakeme in ReqResp mode) instead of
	// the fake DC, and the load is shaped for it (load.Target.Middle).
	Middle bool
	// Command is a proxyproc template. Its placeholders:
	//   {port} {addr}          where the proxy must listen (127.0.0.1)
	//   {secret}               the key, 32 hex digits
	//   {secret_dd}            the dd client form
	//   {secret_ee} {domain}   the ee client form and its domain
	//   {dc_addr} {dc_host} {dc_port}  the fake DC, for every DC
	//   {workers}              Plan.Workers
	//   {dir}                  an empty directory for config files
	// and with Middle:
	//   {proxy_secret}         the proxy-secret file (--aes-pwd), in {dir}
	//   {proxy_multi_conf}     a proxy-multi.conf sending every DC to the
	//                          fake middle proxy, in {dir}
	//   {me_addr} {me_host} {me_port}  the fake middle proxy
	Command string
	Addr    string
	PID     int
	// Secret is a running proxy's secret, in any client form; started
	// proxies get a fresh key per run. An ee form also sets the domain.
	Secret load.Secret
	// Kinds are the secret kinds the proxy serves; scenarios with others
	// are skipped for it. Zero means classic and dd.
	Kinds []load.Kind
}

// ParseProxy reads a proxy from semicolon-separated key=value pairs:
//
//	name=ours;kinds=classic,dd,ee;cmd=bin/mtproxy -H {port} ...
//	name=theirs;addr=127.0.0.1:8443;pid=1234;secret=dd00112233445566778899aabbccddeeff
//	name=ours middle;backend=middle;cmd=bin/mtproxy ... --aes-pwd {proxy_secret} {proxy_multi_conf}
//
// backend is direct (the default) or middle (Proxy.Middle).
// cmd, if present, must come last: the rest of the line is the template,
// semicolons and all.
func ParseProxy(spec string) (Proxy, error) {
	var p Proxy
	rest := spec
	for rest != "" {
		var field string
		if strings.HasPrefix(rest, "cmd=") {
			field, rest = rest, ""
		} else {
			field, rest, _ = strings.Cut(rest, ";")
		}
		key, val, ok := strings.Cut(field, "=")
		if !ok {
			return p, fmt.Errorf("compare: %q: want key=value", field)
		}
		var err error
		switch key {
		case "name":
			p.Name = val
		case "cmd":
			p.Command = val
		case "addr":
			p.Addr = val
		case "pid":
			p.PID, err = strconv.Atoi(val)
		case "secret":
			p.Secret, err = load.ParseSecret(val)
		case "kinds":
			p.Kinds, err = parseKinds(val)
		case "backend":
			switch val {
			case "direct":
				p.Middle = false
			case "middle":
				p.Middle = true
			default:
				err = fmt.Errorf("backend %q (want direct or middle)", val)
			}
		default:
			err = fmt.Errorf("unknown key %q (want name, kinds, backend, cmd, addr, pid or secret)", key)
		}
		if err != nil {
			return p, fmt.Errorf("compare: proxy %q: %w", spec, err)
		}
	}
	return p, p.check()
}

func parseKinds(list string) ([]load.Kind, error) {
	var kinds []load.Kind
	for name := range strings.SplitSeq(list, ",") {
		k, err := load.ParseKind(name)
		if err != nil {
			return nil, err
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

func (p Proxy) check() error {
	switch {
	case p.Name == "":
		return errors.New("compare: a proxy needs a name")
	case p.Command != "" && (p.Addr != "" || p.PID != 0):
		return fmt.Errorf("compare: proxy %s: give cmd, or addr and pid, not both", p.Name)
	case p.Command == "" && (p.Addr == "" || p.PID <= 0 || p.Secret.Kind == 0):
		return fmt.Errorf("compare: proxy %s: give cmd, or addr, pid and secret", p.Name)
	}
	return nil
}

func (p Proxy) serves(k load.Kind) bool {
	if p.Kinds == nil {
		return k == load.Classic || k == load.DD
	}
	return slices.Contains(p.Kinds, k)
}

// instance is a proxy ready for one scenario.
type instance struct {
	addr   string
	pid    int
	secret load.Secret        // its key and domain; the kind is set per scenario
	proc   *proxyproc.Process // nil when already running
	dir    string             // {dir}, removed by stop
}

// startTimeout bounds how long a proxy may take to listen.
const startTimeout = 15 * time.Second

// defaultDomain is the SNI of ee secrets of started proxies.
const defaultDomain = "example.com"

// backends are where a proxy's traffic goes: the fake DC, and the fake
// middle proxy (empty without one) with its proxy secret.
type backends struct {
	dcAddr   string
	meAddr   string
	meSecret []byte
}

// start starts p, or finds it running. Output of a started proxy goes to
// logPath.
func (p Proxy) start(key [16]byte, b *backends, workers int, logPath string) (*instance, error) {
	if p.Command == "" {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.PID)); err != nil {
			return nil, fmt.Errorf("compare: proxy %s: pid %d: %w", p.Name, p.PID, err)
		}
		return &instance{addr: p.Addr, pid: p.PID, secret: p.Secret}, nil
	}
	port, err := proxyproc.FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mtproxy-bench-")
	if err != nil {
		return nil, err
	}
	in := &instance{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		secret: load.Secret{Key: key, Domain: defaultDomain},
		dir:    dir,
	}
	if err := in.launch(p, workers, b, logPath); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return in, nil
}

func (in *instance) launch(p Proxy, workers int, b *backends, logPath string) error {
	_, port, _ := net.SplitHostPort(in.addr)
	dcHost, dcPort, err := net.SplitHostPort(b.dcAddr)
	if err != nil {
		return err
	}
	key := in.secret.Key
	vars := map[string]string{
		"port":      port,
		"addr":      in.addr,
		"secret":    hex.EncodeToString(key[:]),
		"secret_dd": load.Secret{Kind: load.DD, Key: key}.String(),
		"secret_ee": load.Secret{Kind: load.EE, Key: key, Domain: in.secret.Domain}.String(),
		"domain":    in.secret.Domain,
		"dc_addr":   b.dcAddr,
		"dc_host":   dcHost,
		"dc_port":   dcPort,
		"workers":   strconv.Itoa(workers),
		"dir":       in.dir,
	}
	if p.Middle {
		meHost, mePort, err := net.SplitHostPort(b.meAddr)
		if err != nil {
			return err
		}
		secretPath, confPath, err := fakeme.WriteFiles(in.dir, b.meAddr, b.meSecret)
		if err != nil {
			return err
		}
		vars["proxy_secret"] = secretPath
		vars["proxy_multi_conf"] = confPath
		vars["me_addr"], vars["me_host"], vars["me_port"] = b.meAddr, meHost, mePort
	}
	argv, err := proxyproc.Expand(p.Command, vars)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own descriptor
	if in.proc, err = proxyproc.Start(argv, log, in.addr, startTimeout); err != nil {
		return fmt.Errorf("compare: proxy %s: %w (log: %s)", p.Name, err, logPath)
	}
	in.pid = in.proc.PID()
	return nil
}

// stop stops a started proxy; it is an error if the proxy had died on its
// own or ignored SIGTERM.
func (in *instance) stop() error {
	if in.proc == nil {
		return nil
	}
	defer os.RemoveAll(in.dir)
	if exited, err := in.proc.Exited(); exited {
		return fmt.Errorf("compare: the proxy exited during the run: %v", err)
	}
	return in.proc.Stop(10 * time.Second)
}
