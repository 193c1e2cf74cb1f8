package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func checkText(t *testing.T, text string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	problems, err := check(p)
	if err != nil {
		t.Fatal(err)
	}
	return problems
}

func TestRepositoryDockerfile(t *testing.T) {
	problems, err := check("../../Dockerfile")
	if err != nil || len(problems) > 0 {
		t.Fatalf("%v %q", err, problems)
	}
}

func TestProblemsFound(t *testing.T) {
	good := `FROM golang:1.26 AS build
RUN CGO_ENABLED=0 go build -o /m .
FROM scratch
COPY --from=build /m /m
USER 65532
EXPOSE 443
HEALTHCHECK CMD ["/m", "healthcheck"]
ENTRYPOINT ["/m"]
`
	if p := checkText(t, good); len(p) != 0 {
		t.Fatalf("good file: %q", p)
	}
	for _, tc := range []struct{ edit, want string }{
		{strings.Replace(good, "FROM scratch", "FROM debian", 1), "want scratch or distroless"},
		{strings.Replace(good, "USER 65532", "USER root", 1), "non-root USER"},
		{strings.Replace(good, `HEALTHCHECK CMD ["/m", "healthcheck"]`, "", 1), "HEALTHCHECK"},
		{strings.Replace(good, "EXPOSE 443", "", 1), "EXPOSE"},
		{strings.Replace(good, `ENTRYPOINT ["/m"]`, "ENTRYPOINT /m", 1), "exec-form ENTRYPOINT"},
		{strings.Replace(good, "CGO_ENABLED=0 ", "", 1), "CGO_ENABLED=0"},
		{strings.Replace(good, "AS build", "as build", 1), "FromAsCasing"},
	} {
		p := strings.Join(checkText(t, tc.edit), "\n")
		if !strings.Contains(p, tc.want) {
			t.Errorf("want a problem with %q, got %q", tc.want, p)
		}
	}
}
