package suite

import (
	"os/exec"
	"path/filepath"
	"strings"
)

// shower rewrites the command lines of the docs so that they hold no path
// of this machine (issue 15): paths under the repository become relative to
// it, the run's temporary directory becomes $SUITE_DIR, and a binary found
// in PATH is named by its name alone.
type shower struct {
	repo, work string
	bins       []string
}

func newShower(cfg *Config, workDir string) shower {
	sh := shower{work: workDir}
	if cfg.RepoDir != "" {
		if abs, err := filepath.Abs(cfg.RepoDir); err == nil {
			sh.repo = abs
		}
	}
	for _, b := range []string{cfg.RedisServer, cfg.RedisBenchmark} {
		if b == "" {
			continue
		}
		if p, err := exec.LookPath(filepath.Base(b)); err == nil && p == b {
			sh.bins = append(sh.bins, b)
		}
	}
	return sh
}

// show rewrites one command line.
func (sh shower) show(cmd string) string {
	for _, b := range sh.bins {
		if rest, ok := strings.CutPrefix(cmd, b+" "); ok {
			cmd = filepath.Base(b) + " " + rest
		}
	}
	// The work directory first: it may lie under the repository.
	if sh.work != "" {
		cmd = strings.ReplaceAll(cmd, sh.work, "$SUITE_DIR")
	}
	if sh.repo != "" && sh.repo != "/" {
		cmd = strings.ReplaceAll(cmd, sh.repo+"/", "")
		cmd = replaceWord(cmd, sh.repo, ".")
	}
	return cmd
}

// replaceWord replaces old where it is a whole argument.
func replaceWord(cmd, old, repl string) string {
	f := strings.Split(cmd, " ")
	for i, a := range f {
		if a == old {
			f[i] = repl
		}
	}
	return strings.Join(f, " ")
}

// showResults rewrites every command line of res, and the messages that
// may name a path (failures quote commands and logs of the run's
// directory).
func (sh shower) showResults(res *Results) {
	res.Command = sh.show(res.Command)
	for i := range res.Systems {
		s := &res.Systems[i]
		for j := range s.Commands {
			s.Commands[j] = sh.show(s.Commands[j])
		}
		s.LoadCommand = sh.show(s.LoadCommand)
		s.Err = sh.show(s.Err)
		if s.MinSync != nil {
			s.MinSync.Detail = sh.show(s.MinSync.Detail)
		}
		for j := range s.Cells {
			c := &s.Cells[j]
			c.Command = sh.show(c.Command)
			c.Err = sh.show(c.Err)
			for code, msg := range c.Report.ErrorSamples {
				c.Report.ErrorSamples[code] = sh.show(msg)
			}
		}
	}
	if res.Micro != nil {
		res.Micro.Command = sh.show(res.Micro.Command)
		res.Micro.Err = sh.show(res.Micro.Err)
	}
	if m := res.Memory; m != nil {
		for j := range m.Commands {
			m.Commands[j] = sh.show(m.Commands[j])
		}
		m.Err = sh.show(m.Err)
		if m.Soak != nil {
			m.Soak.Err = sh.show(m.Soak.Err)
		}
	}
}
