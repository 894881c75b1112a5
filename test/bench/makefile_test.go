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

package bench

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestMakeBenchAndSoakRunEveryTest: `make bench` and `make soak` pick their tests with
// -run, which Go matches against each name anywhere in it (TestScale does not select
// TestSyncSetScale). A test of this package that neither selects would never run at its
// full size.
func TestMakeBenchAndSoakRunEveryTest(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	selectors := make([]*regexp.Regexp, 0, 2)
	for _, target := range []string{"bench", "soak"} {
		m := regexp.MustCompile(`(?m)^` + target + `:.*\n(?:\t.*\n)*?\t.*go test ./test/bench/ -run '([^']+)'`).FindSubmatch(makefile)
		if m == nil {
			t.Fatalf("the Makefile's %s target has no `go test ./test/bench/ -run '...'`", target)
		}
		selectors = append(selectors, regexp.MustCompile(string(m[1])))
	}
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	testFunc := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`)
	found := 0
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range testFunc.FindAllSubmatch(src, -1) {
			name := string(m[1])
			if name == "TestMakeBenchAndSoakRunEveryTest" {
				continue
			}
			found++
			if !selectors[0].MatchString(name) && !selectors[1].MatchString(name) {
				t.Errorf("%s (%s) is run by neither `make bench` (-run %q) nor `make soak` (-run %q)",
					name, file, selectors[0], selectors[1])
			}
		}
	}
	if found == 0 {
		t.Fatal("no tests found in test/bench")
	}
}
