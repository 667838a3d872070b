package buildinfo

import (
	"os/exec"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, Unknown},
		{"go test: devel, no vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, Unknown},
		{"go install module@version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "v1.2.0"},
		{"go build in a checkout: pseudo-version", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205111218-dcc81c9abcde+dirty"}, Settings: vcs("dcc81c9abcdef0123456789", "true")},
			"v0.0.0-20261205111218-dcc81c9abcde+dirty"},
		{"devel with a clean revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("dcc81c9abcdef0123456789", "false")}, "dcc81c9abcde"},
		{"devel with a modified tree", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("dcc81c9abcdef0123456789", "true")}, "dcc81c9abcde-dirty"},
		{"short revision", &debug.BuildInfo{Settings: vcs("abc", "false")}, "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi); got != tc.want {
				t.Errorf("fromBuildInfo = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestVersionNeverEmpty: a test binary is neither stamped nor built from
// VCS, and still reports something.
func TestVersionNeverEmpty(t *testing.T) {
	if Version == "" {
		t.Fatal("Version is empty")
	}
	line := Line("zptest")
	if !regexp.MustCompile(`^zptest \S+ \(go\S+ \w+/\w+\)$`).MatchString(line) {
		t.Errorf("Line = %q", line)
	}
	if f := strings.Fields(line); f[1] != Version {
		t.Errorf("Line = %q, version %q", line, Version)
	}
}

// TestMakefileStampsVersion checks that `make build` stamps ZP_VERSION into
// Version in every binary it builds.
func TestMakefileStampsVersion(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	cmd := exec.Command("make", "-n", "build", "ZP_VERSION=v9.8.7-test")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	var build string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "go build") {
			build = l
		}
	}
	if !strings.Contains(build, "-X 'github.com/zeppelin-kv/zeppelin/lib/buildinfo.Version=v9.8.7-test'") {
		t.Errorf("make build does not stamp the version:\n%s", out)
	}
}
