package deploy

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// TestDockerfile parses the Dockerfile with BuildKit's parser and checks it
// is multi-stage, builds a static binary and runs it as a non-root user.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile warning: %s", w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	names := map[string]bool{}
	built := false
	for _, s := range stages[:len(stages)-1] {
		names[s.Name] = true
		for _, c := range s.Commands {
			if r, ok := c.(*instructions.RunCommand); ok {
				cmd := strings.Join(r.CmdLine, " ")
				if strings.Contains(cmd, "go build") && strings.Contains(cmd, "CGO_ENABLED=0") && strings.Contains(cmd, "./cmd/scepca") {
					built = true
				}
			}
		}
	}
	if !built {
		t.Error("no build stage runs CGO_ENABLED=0 go build ./cmd/scepca")
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") {
		t.Errorf("runtime base %q, want a distroless static image", final.BaseName)
	}
	var user string
	var entrypoint []string
	var copied []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = c.CmdLine
		case *instructions.CopyCommand:
			if !names[c.From] {
				t.Errorf("COPY --from=%q names no earlier stage", c.From)
			}
			copied = append(copied, c.DestPath)
		case *instructions.RunCommand:
			t.Errorf("RUN in the runtime stage: %v (distroless has no shell)", c.CmdLine)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "0" || uid == "root" {
		t.Errorf("runtime USER %q, want a non-root user", user)
	}
	if len(entrypoint) == 0 || !slices.Contains(copied, entrypoint[0]) {
		t.Errorf("ENTRYPOINT %v is not a file copied into the image (%v)", entrypoint, copied)
	}
}
