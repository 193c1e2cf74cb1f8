// Command dockerlint checks the repository's Dockerfile with BuildKit's own
// parser and linter (the rules of `docker build --check`), plus the
// project's rules for the image: a static build, a final stage from
// scratch or distroless, a non-root user, a health check and the exposed
// ports. It exits 1 with one line per problem.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func main() {
	path := "Dockerfile"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	problems, err := check(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dockerlint: %v\n", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "%s: %s\n", path, p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("%s: ok\n", path)
}

func check(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, w := range res.Warnings {
		problems = append(problems, fmt.Sprintf("line %d: %s", w.Location.Start.Line, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		problems = append(problems, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return append(problems, "no build stage"), nil
	}
	return append(problems, imageRules(stages)...), nil
}

// imageRules are the project's requirements for the final image.
func imageRules(stages []instructions.Stage) []string {
	var problems []string
	final := stages[len(stages)-1]
	if base := final.BaseName; base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/") {
		problems = append(problems, fmt.Sprintf("final stage FROM %s: want scratch or distroless", base))
	}
	var user, health, expose, entry bool
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User != "root" && c.User != "0" && !strings.HasPrefix(c.User, "0:") && !strings.HasPrefix(c.User, "root:")
		case *instructions.HealthCheckCommand:
			health = c.Health != nil && len(c.Health.Test) > 0 && c.Health.Test[0] != "NONE"
		case *instructions.ExposeCommand:
			expose = len(c.Ports) > 0
		case *instructions.EntrypointCommand:
			entry = !c.PrependShell // exec form: signals reach the proxy
		}
	}
	for _, r := range []struct {
		ok   bool
		rule string
	}{
		{user, "final stage must switch to a non-root USER"},
		{health, "final stage needs a HEALTHCHECK"},
		{expose, "final stage must EXPOSE the client and stats ports"},
		{entry, "final stage needs an exec-form ENTRYPOINT so that signals reach the proxy"},
	} {
		if !r.ok {
			problems = append(problems, r.rule)
		}
	}
	static := false
	for _, st := range stages[:len(stages)-1] {
		for _, cmd := range st.Commands {
			if r, ok := cmd.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "CGO_ENABLED=0") {
				static = true
			}
			if e, ok := cmd.(*instructions.EnvCommand); ok {
				for _, kv := range e.Env {
					if kv.Key == "CGO_ENABLED" && kv.Value == "0" {
						static = true
					}
				}
			}
		}
	}
	if !static {
		problems = append(problems, "the build stage must build with CGO_ENABLED=0 (a static binary for scratch/distroless)")
	}
	return problems
}
