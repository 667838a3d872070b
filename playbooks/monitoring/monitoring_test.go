// Package monitoring_test checks the Grafana dashboard, the alert rules and
// the scrape config in this directory against the metrics zpnode and zpmeta
// export: every zeppelin_* name and label a query uses must exist in their
// sources, rate() and friends only take counters, and, when promtool is
// installed, the rules pass `promtool check` and their unit tests.
package monitoring_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	dashboardFile = "zeppelin-dashboard.json"
	alertsFile    = "zeppelin-alerts.yml"
	alertTests    = "zeppelin-alerts.test.yml"
	promConfig    = "prometheus.yml"
)

// The sources that define the metrics, from this directory.
var metricSources = []string{
	"../../zpnode/server/metrics.go",
	"../../zpmeta/server/metrics.go",
}

// metric is one metric family a daemon exports.
type metric struct {
	histogram bool
	labels    []string
}

func (m metric) counter(name string) bool { return strings.HasSuffix(name, "_total") }

// exported reads the metric families out of the sources: every
// prometheus.NewDesc("name", help, []string{labels}, ...) and
// prometheus.New{Counter,Gauge,Histogram}[Vec](Opts{Name: "name"}, []string{labels}).
func exported(t *testing.T) map[string]metric {
	t.Helper()
	out := map[string]metric{}
	fset := token.NewFileSet()
	for _, path := range metricSources {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			var name string
			var labelArg ast.Expr
			switch fn := sel.Sel.Name; fn {
			case "NewDesc":
				name = stringLit(call.Args[0])
				if len(call.Args) > 2 {
					labelArg = call.Args[2]
				}
			case "NewCounter", "NewGauge", "NewHistogram", "NewCounterVec", "NewGaugeVec", "NewHistogramVec":
				if opts, ok := call.Args[0].(*ast.CompositeLit); ok {
					for _, e := range opts.Elts {
						if kv, ok := e.(*ast.KeyValueExpr); ok && fmt.Sprint(kv.Key) == "Name" {
							name = stringLit(kv.Value)
						}
					}
				}
				if len(call.Args) > 1 {
					labelArg = call.Args[1]
				}
			default:
				return true
			}
			if !strings.HasPrefix(name, "zeppelin_") {
				return true
			}
			m := metric{histogram: strings.HasPrefix(sel.Sel.Name, "NewHistogram")}
			if lit, ok := labelArg.(*ast.CompositeLit); ok {
				for _, e := range lit.Elts {
					m.labels = append(m.labels, stringLit(e))
				}
			}
			out[name] = m
			return true
		})
	}
	if len(out) < 30 {
		t.Fatalf("found only %d zeppelin_* metrics in %v: has the way they are declared changed?", len(out), metricSources)
	}
	return out
}

func stringLit(e ast.Expr) string {
	if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
		if s, err := strconv.Unquote(bl.Value); err == nil {
			return s
		}
	}
	return ""
}

// Labels every target has (Prometheus's), and the node label the example
// scrape config gives node targets.
var targetLabels = []string{"instance", "job", "node"}

// Metrics from elsewhere that queries may use: Prometheus's own, and
// node_exporter's (ZeppelinDiskFilling needs it).
var foreignMetrics = map[string][]string{
	"up":                          nil,
	"node_filesystem_avail_bytes": {"mountpoint", "fstype", "device"},
	"node_filesystem_size_bytes":  {"mountpoint", "fstype", "device"},
}

// PromQL words that look like metric names.
var promqlWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`sum min max avg count stddev stdvar topk bottomk quantile count_values group
		by without on ignoring group_left group_right bool and or unless offset
		rate irate increase delta idelta deriv predict_linear changes resets histogram_quantile
		abs ceil floor round clamp clamp_min clamp_max exp ln log2 log10 sqrt time timestamp vector scalar
		absent absent_over_time label_replace label_join sort sort_desc
		avg_over_time min_over_time max_over_time sum_over_time count_over_time last_over_time
		quantile_over_time stddev_over_time present_over_time inf nan`) {
		promqlWords[w] = true
	}
}

var (
	reStrings    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	reRange      = regexp.MustCompile(`\[[^\]]*\]`)
	reIdent      = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	reSelector   = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	reMatcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	reGrouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	reCounterFn  = regexp.MustCompile(`\b(rate|irate|increase|resets)\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	reGaugeFn    = regexp.MustCompile(`\b(deriv|delta|predict_linear)\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	reLegend     = regexp.MustCompile(`\{\{\s*\$?(?:labels\.)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	reAnnotLabel = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	reNumber     = regexp.MustCompile(`^[0-9]`)
	reBraces     = regexp.MustCompile(`\{[^}]*\}`)
)

// checker checks PromQL expressions against the exported metrics.
type checker struct {
	metrics map[string]metric
}

// family resolves a series name to its family: a histogram's _bucket,
// _sum and _count are the histogram's.
func (c checker) family(name string) (string, metric, bool) {
	if m, ok := c.metrics[name]; ok && !m.histogram {
		return name, m, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base := strings.TrimSuffix(name, suf)
		if m, ok := c.metrics[base]; ok && m.histogram && base != name {
			if suf == "_bucket" {
				m.labels = append(slices.Clone(m.labels), "le")
			}
			return base, m, true
		}
	}
	if labels, ok := foreignMetrics[name]; ok {
		return name, metric{labels: labels}, true
	}
	return "", metric{}, false
}

// check returns what is wrong with expr, and the labels its series may
// carry (for legends and annotations).
func (c checker) check(expr string) (problems []string, labels map[string]bool) {
	labels = map[string]bool{}
	for _, l := range targetLabels {
		labels[l] = true
	}
	bare := reStrings.ReplaceAllString(expr, `""`)
	bare = reRange.ReplaceAllString(bare, "")
	// Series names: identifiers that are not PromQL, not label names
	// inside braces, not numbers.
	noMatchers := reBraces.ReplaceAllString(bare, "")
	noMatchers = reGrouping.ReplaceAllString(noMatchers, "")
	var series []string
	for _, id := range reIdent.FindAllString(noMatchers, -1) {
		if promqlWords[id] || reNumber.MatchString(id) {
			continue
		}
		_, m, ok := c.family(id)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no such metric in %v", id, metricSources))
			continue
		}
		series = append(series, id)
		for _, l := range m.labels {
			labels[l] = true
		}
	}
	if len(series) == 0 {
		problems = append(problems, "uses no metric")
	}
	for _, sm := range reSelector.FindAllStringSubmatch(bare, -1) {
		_, m, ok := c.family(sm[1])
		if !ok {
			continue
		}
		allowed := append(slices.Clone(m.labels), targetLabels...)
		for _, mm := range reMatcher.FindAllStringSubmatch(sm[2], -1) {
			if !slices.Contains(allowed, mm[1]) {
				problems = append(problems, fmt.Sprintf("%s has no label %q (it has %v)", sm[1], mm[1], m.labels))
			}
		}
	}
	for _, gm := range reGrouping.FindAllStringSubmatch(bare, -1) {
		for _, l := range strings.Split(gm[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !labels[l] {
				problems = append(problems, fmt.Sprintf("grouping by %q, a label none of %v has", l, series))
			}
		}
	}
	for _, fm := range reCounterFn.FindAllStringSubmatch(bare, -1) {
		if fam, m, ok := c.family(fm[2]); ok && !m.counter(fam) && !m.histogram {
			problems = append(problems, fmt.Sprintf("%s() of %s, which is not a counter", fm[1], fm[2]))
		}
	}
	for _, fm := range reGaugeFn.FindAllStringSubmatch(bare, -1) {
		if fam, m, ok := c.family(fm[2]); ok && (m.counter(fam) || m.histogram) {
			problems = append(problems, fmt.Sprintf("%s() of counter %s: use rate() or increase()", fm[1], fm[2]))
		}
	}
	return problems, labels
}

// Dashboard JSON, as far as the test reads it.
type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string      `json:"name"`
			Expr       string      `json:"expr"`
			Datasource *datasource `json:"datasource"`
			BuiltIn    int         `json:"builtIn"`
		} `json:"list"`
	} `json:"annotations"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID        string      `json:"refId"`
		Expr         string      `json:"expr"`
		LegendFormat string      `json:"legendFormat"`
		Datasource   *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// TestDashboard: the dashboard parses, has the datasource and table
// variables, every panel queries through the datasource variable, and
// every query and legend names metrics and labels that exist.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	c := checker{metrics: exported(t)}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" {
			var q struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &q); err != nil {
				t.Fatalf("variable %s: query %s: %v", v.Name, v.Query, err)
			}
			inner := strings.TrimSuffix(strings.TrimPrefix(q.Query, "label_values("), ")")
			name, label, _ := strings.Cut(inner, ",")
			if _, m, ok := c.family(strings.TrimSpace(name)); !ok || !slices.Contains(m.labels, strings.TrimSpace(label)) {
				t.Errorf("variable %s: %s: no metric %q with label %q", v.Name, q.Query, name, label)
			}
			if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("variable %s does not use the datasource variable", v.Name)
			}
		}
	}
	if vars["datasource"] != "datasource" || vars["table"] != "query" {
		t.Fatalf("variables %v: want datasource (datasource) and table (query)", vars)
	}

	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	ids := map[int]string{}
	titles := map[string]bool{}
	queries := 0
	for _, p := range all {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		titles[p.Title] = true
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			problems, labels := c.check(tg.Expr)
			for _, l := range reLegend.FindAllStringSubmatch(tg.LegendFormat, -1) {
				if !labels[l[1]] {
					problems = append(problems, fmt.Sprintf("legend %q names label %q, which the series lack", tg.LegendFormat, l[1]))
				}
			}
			for _, pr := range problems {
				t.Errorf("panel %q, query %s: %s\n  %s", p.Title, tg.RefID, pr, tg.Expr)
			}
		}
	}
	for _, a := range d.Annotations.List {
		if a.BuiltIn == 1 {
			continue
		}
		problems, _ := c.check(a.Expr)
		for _, pr := range problems {
			t.Errorf("annotation %q: %s\n  %s", a.Name, pr, a.Expr)
		}
	}
	// What the dashboard is for: one panel per question.
	for _, want := range []string{"Requests/s by table and code", "Latency p50 / p99 by table and command", "QUOTA_EXCEEDED/s by table",
		"Network bytes in / out per node", "Replication lag (records) by table and partition", "Binlog bytes per node and table",
		"Memtable bytes per node", "SST bytes per node and table", "Pending compaction bytes per node", "Block cache hit ratio per node",
		"Node up", "Meta leader, Raft term", "Topology epoch and Raft indexes", "Failovers", "Moves in progress by state",
		"Partitions with master down", "Commands/s by command (native and RESP fronts)", "RESP connections and commands/s per node"} {
		if !titles[want] {
			t.Errorf("no panel %q", want)
		}
	}
	t.Logf("%d panels, %d queries checked against %d metrics", len(all), queries, len(c.metrics))
}

// rules is an alert rules file.
type rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRules: the rules parse, the alerts the operators need are
// there with a severity, a summary and a description, and every
// expression and annotation names metrics and labels that exist.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rs rules
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rs); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	c := checker{metrics: exported(t)}
	alerts := map[string]string{} // name -> expr
	fors := map[string]time.Duration{}
	for _, g := range rs.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert name", g.Name)
				continue
			}
			if _, dup := alerts[r.Alert]; dup {
				t.Errorf("alert %s twice", r.Alert)
			}
			alerts[r.Alert] = r.Expr
			if r.For != "" {
				d, err := time.ParseDuration(r.For)
				if err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
				fors[r.Alert] = d
			}
			if sev := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, sev) {
				t.Errorf("alert %s: severity %q", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: no summary or description", r.Alert)
			}
			problems, labels := c.check(r.Expr)
			for _, text := range r.Annotations {
				for _, l := range reAnnotLabel.FindAllStringSubmatch(text, -1) {
					if !labels[l[1]] {
						problems = append(problems, fmt.Sprintf("annotation names label %q, which the series lack", l[1]))
					}
				}
			}
			for _, pr := range problems {
				t.Errorf("alert %s: %s\n  %s", r.Alert, pr, r.Expr)
			}
		}
	}
	want := map[string]string{
		"ZeppelinMasterMissing":  "zeppelin_meta_partitions_master_down",
		"ZeppelinReplicaLagging": "zeppelin_node_replication_lag_records",
		"ZeppelinNodeDown":       "zeppelin_meta_node_up",
		"ZeppelinDiskFilling":    "node_filesystem_avail_bytes",
		"ZeppelinBinlogGrowing":  "zeppelin_node_binlog_bytes",
		"ZeppelinMetaNoLeader":   "zeppelin_meta_leader",
		"ZeppelinMovesStuck":     "zeppelin_meta_moves",
	}
	for name, metric := range want {
		if !strings.Contains(alerts[name], metric) {
			t.Errorf("alert %s missing or not about %s (expr %q)", name, metric, alerts[name])
		}
	}
	if fors["ZeppelinMasterMissing"] != 30*time.Second || fors["ZeppelinReplicaLagging"] != 5*time.Minute {
		t.Errorf("for: master missing %v (want 30s), replica lagging %v (want 5m)", fors["ZeppelinMasterMissing"], fors["ZeppelinReplicaLagging"])
	}
	t.Logf("%d alerts: %v", len(alerts), slices.Sorted(maps.Keys(alerts)))
}

// TestScrapeConfig: the example config loads the rules and scrapes the
// jobs the rules and dashboard name, on the ports `make run` uses.
func TestScrapeConfig(t *testing.T) {
	b, err := os.ReadFile(promConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", promConfig, err)
	}
	if !slices.Contains(cfg.RuleFiles, alertsFile) {
		t.Errorf("rule_files %v lacks %s", cfg.RuleFiles, alertsFile)
	}
	targets := map[string][]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets[sc.JobName] = append(targets[sc.JobName], st.Targets...)
			if sc.JobName == "zeppelin-node" && st.Labels["node"] == "" {
				t.Errorf("node target %v has no node label", st.Targets)
			}
		}
	}
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for job, variable := range map[string]string{"zeppelin-meta": "META_METRICS_PORTS", "zeppelin-node": "NODE_METRICS_PORTS"} {
		m := regexp.MustCompile(`(?m)^` + variable + `\s*:=\s*(.*)$`).FindSubmatch(makefile)
		if m == nil {
			t.Fatalf("Makefile has no %s", variable)
		}
		var want []string
		for _, p := range strings.Fields(string(m[1])) {
			want = append(want, "127.0.0.1:"+p)
		}
		if !slices.Equal(targets[job], want) {
			t.Errorf("job %s scrapes %v; make run serves metrics on %v", job, targets[job], want)
		}
	}
}

// TestPromtool runs promtool on the rules, their unit tests and the
// config, when it is installed (Debian: apt-get install prometheus).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	for _, args := range [][]string{
		{"check", "rules", alertsFile},
		{"test", "rules", alertTests},
		{"check", "config", promConfig},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	abs, _ := filepath.Abs(alertsFile)
	t.Logf("promtool checked %s", abs)
}

// TestChecker: the checks above catch the mistakes they are for.
func TestChecker(t *testing.T) {
	c := checker{metrics: exported(t)}
	for expr, want := range map[string]string{
		`rate(zeppelin_node_requests_totl[5m])`:                   "no such metric",
		`sum by (tabel) (rate(zeppelin_node_requests_total[5m]))`: `grouping by "tabel"`,
		`zeppelin_node_epoch{table="x"}`:                          `has no label "table"`,
		`rate(zeppelin_node_epoch[5m])`:                           "not a counter",
		`deriv(zeppelin_node_requests_total[5m])`:                 "use rate() or increase()",
		`vector(1)`:                                                              "uses no metric",
		`zeppelin_node_request_duration_seconds`:                                 "no such metric",
		`zeppelin_node_requests_total_bucket`:                                    "no such metric",
		`sum by (le) (rate(zeppelin_node_requests_total[5m]))`:                   `grouping by "le"`,
		`max(zeppelin_meta_moves{state="MOVE_STUCK"}) and on (partition) up > 0`: `grouping by "partition"`,
	} {
		problems, _ := c.check(expr)
		if !strings.Contains(strings.Join(problems, "; "), want) {
			t.Errorf("check(%s) = %q, want a problem with %q", expr, problems, want)
		}
	}
	for _, expr := range []string{
		`histogram_quantile(0.99, sum by (le, table, command) (rate(zeppelin_node_request_duration_seconds_bucket{table=~"$table"}[$__rate_interval])))`,
		`sum(rate(zeppelin_node_request_duration_seconds_sum[5m])) / sum(rate(zeppelin_node_request_duration_seconds_count[5m]))`,
		`zeppelin_meta_node_up{node="127.0.0.1:9231", zone="a"} and on (instance) zeppelin_meta_leader == 1`,
	} {
		if problems, _ := c.check(expr); len(problems) > 0 {
			t.Errorf("check(%s) = %q, want none", expr, problems)
		}
	}
}
