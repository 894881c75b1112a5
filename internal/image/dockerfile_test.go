/*
Copyright 2026 The nango-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package image

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDockerfileMatchesTheImage compares, without a container engine, what the Dockerfile's
// final stage puts into its image with what Build puts into the manager's layer and config:
// one file, /manager, as the entrypoint, run as 65532:65532, built static and stamped the
// same way. The base layers differ, as the README says: distroless/static:nonroot holds
// what baseFiles holds (passwd, group, nsswitch.conf, the CA bundle, /tmp, /home/nonroot)
// plus tzdata, /etc/os-release and Debian's package records, none of which the manager uses.
func TestDockerfileMatchesTheImage(t *testing.T) {
	contents, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := dockerfileStages(t, string(contents))
	if len(stages) != 2 {
		t.Fatalf("the Dockerfile has %d stages, want a builder and the image", len(stages))
	}
	final := stages[1]
	if want := "FROM gcr.io/distroless/static:nonroot"; final[0] != want {
		t.Errorf("the image's base is %q, want %q (README, \"The image, built without Docker\", says how it differs)", final[0], want)
	}
	copied, user, entrypoint, command := imageStage(t, final[1:])
	if !slices.Equal(copied, []string{Entrypoint}) {
		t.Errorf("the Dockerfile adds %q to its base, the built image's top layer %q", copied, []string{Entrypoint})
	}
	if user != User {
		t.Errorf("USER %s, the built image runs as %s", user, User)
	}
	if !slices.Equal(entrypoint, []string{Entrypoint}) || len(command) > 0 {
		t.Errorf("ENTRYPOINT %q CMD %q, the built image's entrypoint is [%s] with no command", entrypoint, command, Entrypoint)
	}

	re := regexp.MustCompile
	builder := strings.Join(stages[0], "\n")
	for what, pattern := range map[string]string{
		"a static binary":       `CGO_ENABLED=0 `,
		"without local paths":   ` -trimpath `,
		"stripped":              `-ldflags="-s -w `,
		"stamped with version":  `-X github.com/nango-operator/nango-operator/internal/version\.version=\$\{VERSION\}`,
		"stamped with commit":   `-X github.com/nango-operator/nango-operator/internal/version\.commit=\$\{COMMIT\}`,
		"stamped with its date": `-X github.com/nango-operator/nango-operator/internal/version\.date=\$\{BUILD_DATE\}`,
		"the manager of ./cmd":  `-o manager \./cmd`,
	} {
		if !re(pattern).MatchString(builder) {
			t.Errorf("the Dockerfile's builder does not build %s (%s), as `make image` does", what, pattern)
		}
	}
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{`CGO_ENABLED=0 GOOS=\$\$os GOARCH=\$\$arch go build -trimpath -ldflags '\$\(LDFLAGS\)'`,
		`LDFLAGS \?= -s -w -X \$\(VERSION_PKG\)\.version=\$\(VERSION\) -X \$\(VERSION_PKG\)\.commit=\$\(COMMIT\) -X \$\(VERSION_PKG\)\.date=\$\(BUILD_DATE\)`,
		`VERSION_PKG = github.com/nango-operator/nango-operator/internal/version`} {
		if !re(pattern).Match(makefile) {
			t.Errorf("the Makefile's image build changed (%s): compare it with the Dockerfile again", pattern)
		}
	}
}

// dockerfileStages answers the instructions of each stage of a Dockerfile, continuation
// lines joined, comments and blank lines left out.
func dockerfileStages(t *testing.T, contents string) [][]string {
	var stages [][]string
	for _, line := range strings.Split(strings.ReplaceAll(contents, "\\\n", " "), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%q comes before the first FROM", line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], line)
	}
	return stages
}

// imageStage reads what the instructions of an image stage (after its FROM) put into the
// image: the files copied in, the user, the entrypoint and the command.
func imageStage(t *testing.T, instructions []string) (copied []string, user string, entrypoint, command []string) {
	workdir := "/"
	for _, instruction := range instructions {
		keyword, args, _ := strings.Cut(instruction, " ")
		switch keyword {
		case "WORKDIR":
			workdir = path.Join(workdir, args)
		case "COPY":
			fields := strings.Fields(args)
			if !strings.HasPrefix(fields[0], "--from=") || len(fields) != 3 {
				t.Fatalf("COPY %s: only one file copied from the builder is compared", args)
			}
			dest := fields[2]
			if dest == "." || strings.HasSuffix(dest, "/") {
				dest = path.Join(dest, path.Base(fields[1]))
			}
			if !path.IsAbs(dest) {
				dest = path.Join(workdir, dest)
			}
			copied = append(copied, dest)
		case "USER":
			user = args
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(args), &entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s is not in exec form: %v", args, err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(args), &command); err != nil {
				t.Fatalf("CMD %s is not in exec form: %v", args, err)
			}
		default:
			t.Errorf("the image stage has %s, which this test does not compare with the built image", keyword)
		}
	}
	return copied, user, entrypoint, command
}
